// The EL stage as the gateway wires it: verdicts through the same sample sink (committed before the
// images move), its retained status through the publisher, its counts into the metrics.
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.js';
import type { GatewayHealth } from '../core/gateway-health.js';
import type { SampleSink } from '../core/sample-sink.js';
import type { Metrics } from '../health/metrics.js';
import type { MqttPublisher } from '../publish/mqtt-publisher.js';
import { renderTopic } from '../publish/topics.js';
import { InferenceStage } from './stage.js';

/** The EL stage, when configured: its verdicts go through the same sink, buffer and publisher as PLC data. */
export function elStage(
  config: LoadedConfig,
  deps: { log: Logger; inferenceWorkerFile?: string },
  { sink, publisher, metrics, gwHealth }: { sink: SampleSink; publisher: MqttPublisher; metrics: Metrics; gwHealth: GatewayHealth },
): { stage: InferenceStage; status: () => Record<string, unknown> | undefined } | undefined {
  const { gateway: g, baseDir } = config;
  const inf = g.inference?.enabled ? g.inference : undefined;
  if (!inf) return undefined;
  /** The stage's last status, for the status page. */
  let last: Record<string, unknown> | undefined;
  const stage = new InferenceStage(inf, {
    log: deps.log.child({ component: 'inference' }),
    baseDir,
    append: (samples) => sink.now(samples),
    status: (payload) => {
      last = payload;
      publisher.setRetained(renderTopic(inf.status_topic, { site: g.site, gateway: g.gateway_id }, g.mqtt.topic_dot), JSON.stringify(payload));
    },
    count: (what, n, queued) => {
      if (what === 'model_rejected') metrics.elModelRejected.inc(n);
      else metrics.elImages.inc({ outcome: what }, n);
      metrics.elQueue.set(queued);
    },
    fault: (err) => gwHealth.fault('inference', err),
    workerFile: deps.inferenceWorkerFile,
  });
  return { stage, status: () => last };
}
