import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** All gateway metrics, on a registry of their own (no global state, several gateways per process in tests). */
export function createMetrics() {
  const registry = new Registry();
  // The process itself: CPU, resident memory, V8 heap and external memory, event-loop delay,
  // open file descriptors — what an operator watches over months (prefixed edgeferry_). The
  // event-loop delay is sampled every 250 ms, not prom-client's default 10 ms: a timer 100 times a
  // second woke the idle process for a third of its CPU (bench/FINDINGS.md 20); a stalled loop
  // still shows, as the delay of the sample it held up.
  collectDefaultMetrics({ register: registry, prefix: 'edgeferry_', eventLoopMonitoringPrecision: 250 });
  const m = {
    registry,
    polled: new Counter({ name: 'edgeferry_samples_polled_total', help: 'Point readings taken from devices.', labelNames: ['device'], registers: [registry] }),
    buffered: new Counter({ name: 'edgeferry_samples_buffered_total', help: 'Samples written to the store-and-forward buffer.', registers: [registry] }),
    published: new Counter({
      name: 'edgeferry_samples_published_total',
      help: 'Samples acknowledged by the broker and removed from the buffer.',
      registers: [registry],
    }),
    sparkplugUnsent: new Counter({
      name: 'edgeferry_sparkplug_rows_unsent_total',
      help: 'Sparkplug: buffered rows delivered without a DDATA message, by reason (unchanged: report by exception; dead_device: the gap marker of a device its DDEATH announced; unknown_point: no metric for it; not_born: before the births, never expected).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    badReadings: new Counter({
      name: 'edgeferry_readings_bad_total',
      help: 'Readings with quality bad (device exceptions, malformed answers).',
      labelNames: ['device'],
      registers: [registry],
    }),
    elImages: new Counter({
      name: 'edgeferry_el_images_total',
      help: 'EL images taken out of the inbox, by outcome (classified, rejected).',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    writes: new Counter({
      name: 'edgeferry_writes_total',
      help: 'Commands to write a point, by device and outcome (ok, refused, failed, expired).',
      labelNames: ['device', 'outcome'],
      registers: [registry],
    }),
    elQueue: new Gauge({ name: 'edgeferry_el_queue', help: 'EL images queued for the inference workers.', registers: [registry] }),
    elModelRejected: new Counter({
      name: 'edgeferry_el_model_rejected_total',
      help: 'EL models refused at load or reload (the previous one kept serving).',
      registers: [registry],
    }),
    overruns: new Counter({
      name: 'edgeferry_poll_overruns_total',
      help: 'Poll ticks skipped because the previous poll of the group was still running.',
      labelNames: ['device', 'interval_ms'],
      registers: [registry],
    }),
    pollSeconds: new Histogram({
      name: 'edgeferry_poll_duration_seconds',
      help: 'Time to read one poll group.',
      labelNames: ['device'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    exchangeSeconds: new Histogram({
      name: 'edgeferry_device_rtt_seconds',
      help: 'Round trip of each answered request or heartbeat probe.',
      labelNames: ['device'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    }),
    exchangeFailures: new Counter({
      name: 'edgeferry_device_failures_total',
      help: 'Failed requests by kind: timeout, error (garbled answer), link (transport lost).',
      labelNames: ['device', 'kind'],
      registers: [registry],
    }),
    reconnects: new Counter({
      name: 'edgeferry_link_reconnects_total',
      help: 'Links reopened after being lost.',
      labelNames: ['endpoint'],
      registers: [registry],
    }),
    failoverSwitches: new Counter({
      name: 'edgeferry_failover_switches_total',
      help: 'Switches of critical points between primary and backup channel.',
      labelNames: ['device', 'to'],
      registers: [registry],
    }),
    failoverActive: new Gauge({
      name: 'edgeferry_failover_on_backup',
      help: '1 while the critical points of a device are read through its backup channel.',
      labelNames: ['device'],
      registers: [registry],
    }),
    deviceUp: new Gauge({
      name: 'edgeferry_device_up',
      help: '1 when the device answers (up or degraded), else 0.',
      labelNames: ['device'],
      registers: [registry],
    }),
    mqttConnected: new Gauge({ name: 'edgeferry_mqtt_connected', help: '1 when connected to the broker.', registers: [registry] }),
    inflight: new Gauge({ name: 'edgeferry_mqtt_inflight', help: 'Messages published and not yet acknowledged.', registers: [registry] }),
    bufferDepth: new Gauge({ name: 'edgeferry_buffer_depth', help: 'Samples waiting in the buffer.', registers: [registry] }),
    bufferBytes: new Gauge({ name: 'edgeferry_buffer_bytes', help: 'Bytes the buffer uses on disk (pages in use plus WAL).', registers: [registry] }),
    bufferEvicted: new Gauge({
      name: 'edgeferry_buffer_evicted',
      help: 'Samples evicted at the buffer bounds since the buffer file was created (each eviction is also an event on the events topic).',
      registers: [registry],
    }),
    deadLetters: new Gauge({
      name: 'edgeferry_buffer_dead_letters',
      help: 'Messages the broker refused for good, kept in the dead_letter table.',
      registers: [registry],
    }),
    replayed: new Counter({
      name: 'edgeferry_samples_replayed_total',
      help: 'Backlog samples published after an outage (flagged historical); rate() gives the replay rate.',
      registers: [registry],
    }),
    faults: new Counter({
      name: 'edgeferry_faults_total',
      help: 'Exceptions caught at an error boundary (poll group, publisher, inference worker, process) by component; the gateway carried on.',
      labelNames: ['component'],
      registers: [registry],
    }),
    degraded: new Gauge({
      name: 'edgeferry_degraded',
      help: '1 while a component is degraded (its reason is on /healthz and the gateway status topic).',
      labelNames: ['component'],
      registers: [registry],
    }),
    bufferUnstored: new Gauge({
      name: 'edgeferry_buffer_unstored',
      help: 'Samples the disk refused even after eviction since the buffer file was created (each is also in a data_lost event).',
      registers: [registry],
    }),
    outputDelivered: new Counter({
      name: 'edgeferry_output_delivered_total',
      help: 'Rows an output (mqtt, influxdb, …) delivered and acknowledged in the buffer, by output. MQTT also counts in edgeferry_samples_published_total.',
      labelNames: ['output'],
      registers: [registry],
    }),
    outputDeadLetters: new Counter({
      name: 'edgeferry_output_dead_letters_total',
      help: 'Rows an output refused for good (the data itself), moved to dead_letter, by output.',
      labelNames: ['output'],
      registers: [registry],
    }),
    outputBacklog: new Gauge({
      name: 'edgeferry_output_backlog',
      help: 'Rows in the buffer this output has not delivered yet, by output.',
      labelNames: ['output'],
      registers: [registry],
    }),
    outputLag: new Gauge({
      name: 'edgeferry_output_lag_seconds',
      help: 'Age of the oldest row this output has not delivered (0 when it has everything), by output.',
      labelNames: ['output'],
      registers: [registry],
    }),
    outputUp: new Gauge({
      name: 'edgeferry_output_up',
      help: '1 while the output delivers (or has nothing to deliver), 0 while its writes fail, by output.',
      labelNames: ['output'],
      registers: [registry],
    }),
    bufferAge: new Gauge({
      name: 'edgeferry_buffer_oldest_age_seconds',
      help: 'Age of the oldest sample waiting in the buffer (0 when empty).',
      registers: [registry],
    }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
