// The Telegraf example in docs/integration.md, as a user takes it (issue 34): the doc's
// inputs.mqtt_consumer block run by a real Telegraf (built from the Go module proxy into
// .cache/telegraf at the first run, with only the plugins it needs — Telegraf is not in Debian 12),
// fed by the gateway through mosquitto, with a file output added to see what it makes of the data.
// Only the broker's address, the certificate files and the site/gateway names are put in. Then
// Telegraf is stopped for 15 s while the gateway publishes: by seq, nothing may be missing (with a
// persistent session Telegraf acknowledges a message once its outputs took it, so even what was in
// flight at the stop comes again).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stopChild } from '../../simulators/stop-child.js';
import { recipe } from '../../scripts/lib/doc-recipes.js';
import { consumerPlant, missing } from '../helpers/consumer-plant.js';
import { Subscriber } from '../helpers/subscriber.js';
import { installTelegraf, TELEGRAF, telegrafMetrics } from '../helpers/telegraf.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('docs/integration.md: the Telegraf example', () => {
  it(
    'runs as written in a real Telegraf: the sample time, seq and tags come through, and a 15 s Telegraf restart loses nothing',
    { timeout: 600_000 },
    async () => {
      const telegraf = installTelegraf();
      const { broker, dir, gateway } = await consumerPlant('docs-telegraf', cleanups);

      // The doc's block, with this test's broker, files and names; an output to see the metrics.
      const out = join(dir, 'metrics.json');
      const conf =
        `[agent]\n  interval = "1s"\n  flush_interval = "200ms"\n  omit_hostname = true\n\n` +
        recipe('integration.md', 'toml telegraf')
          .replace('ssl://broker.plant-a.lan:8883', `ssl://127.0.0.1:${new URL(broker.url).port}`)
          .replaceAll('plant-a/gw-01', 's/g')
          .replace('/etc/ssl/plant-ca.pem', broker.files.ca)
          .replace('/etc/ssl/telegraf-historian-1.pem', broker.files.clientCert)
          .replace('/etc/ssl/telegraf-historian-1.key', broker.files.clientKey) +
        `\n[[outputs.file]]\n  files = ["${out}"]\n  data_format = "json"\n  json_timestamp_units = "1ms"\n`;
      writeFileSync(join(dir, 'telegraf.conf'), conf);
      let tg: ChildProcess | undefined;
      let log = '';
      const startTelegraf = () => {
        tg = spawn(telegraf, ['--config', join(dir, 'telegraf.conf')], { stdio: ['ignore', 'pipe', 'pipe'] });
        tg.stdout!.on('data', (d: Buffer) => (log += d.toString()));
        tg.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      };
      cleanups.push(() => stopChild(tg));
      startTelegraf();

      const gw = gateway();
      const sub = await Subscriber.connect(broker, 's/g/#');
      cleanups.push(() => sub.close());
      await gw.gw.start();

      const metrics = () => telegrafMetrics(out);
      const seqs = () => metrics().map((m) => m.fields.seq!);
      const until = async (what: string, ok: () => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (!ok()) {
          if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms; Telegraf said: ${log.slice(-3000)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      await until('metrics through the doc’s block', () => metrics().length >= 50, 60_000);

      // What a historian gets: the sample's own time, value, seq, and the tags the doc promises.
      const m = metrics()[0]!;
      expect(m.name).toBe('edgeferry');
      expect(m.tags).toMatchObject({ site: 's', gateway: 'g', device: 'plc', quality: 'good' });
      expect(m.tags.point).toMatch(/^p[0-4]$/);
      expect(typeof m.fields.value).toBe('number');
      expect(Number.isInteger(m.fields.seq)).toBe(true);
      // The metric time is the sample's own time to the millisecond (what the gateway published), not Telegraf's arrival time.
      const published = new Map(sub.messages.filter((x) => typeof x.json.seq === 'number').map((x) => [x.json.seq as number, Date.parse(String(x.json.ts))]));
      const compared = metrics().filter((x) => published.has(x.fields.seq!));
      expect(compared.length).toBeGreaterThan(10);
      for (const x of compared) expect(x.timestamp, `seq ${x.fields.seq}`).toBe(published.get(x.fields.seq!));

      // Telegraf restarted: 15 s away while the gateway publishes.
      const storedBeforeStop = Math.max(...seqs());
      await stopChild(tg);
      const publishedAtExit = gw.gw.bufferStats().lastSeq;
      const lastBefore = Math.max(...seqs());
      await new Promise((r) => setTimeout(r, 15_000));
      const publishedMeanwhile = gw.gw.bufferStats().lastSeq - lastBefore;
      startTelegraf();
      const target = gw.gw.bufferStats().lastSeq + 50;
      await until('metrics after the restart', () => Math.max(...seqs()) >= target, 60_000);

      const { lo, hi, count, missing: holes } = missing(seqs());
      console.log(
        `Telegraf ${TELEGRAF} with the doc's block: ${count} samples (seq ${lo}..${hi}), ${publishedMeanwhile} published during the 15 s restart, ` +
          `${holes.length} missing ${JSON.stringify(holes.slice(0, 20))} (in Telegraf at the stop: seq ${storedBeforeStop + 1}..${publishedAtExit})`,
      );
      expect(publishedMeanwhile).toBeGreaterThan(100);
      // Acknowledged only once its output took them: not even what was in flight at the stop is lost.
      expect(holes).toEqual([]);
    },
  );
});
