// The plant's incident, against implementations nobody on the team wrote: a boiler's Modbus TCP
// path (pymodbus, behind a proxy that blackholes it and heals) fails over to BACnet MS/TP
// (bacnet-stack's bacserv on a plain socat pty pair, no pacing) for its critical point, cycle
// after cycle. Per cycle, on what a subscriber of the real broker receives: the critical point is
// read over the backup after one failed read of the primary, the normal point keeps its rhythm
// while the primary serves it (no gap of a blocked poll, 2 s here), and the failback waits for the
// hold. Across all cycles: every seq once and increasing, per point. The critical point's largest
// gap is printed, not asserted: it is under 1 s on an idle machine, but on a starved one socat (the
// pty pair's relay) is descheduled, the MS/TP token is lost and a backup read fails on its own.
// FAILOVER_CYCLES sets the number of cycles (default 10).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { frameName, MstpMonitor, tallyTokens } from '../../simulators/bacnet-mstp/monitor.js';
import { startMosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { ptyPair } from '../../simulators/serial-line.js';
import { startProxy } from '../../simulators/tcp-proxy/index.js';
import { gatewayYaml, makeGateway } from '../helpers/gateway.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';
import { PYMODBUS_SERVER, PYTHON, startBacserv, startPeer } from '../peers/peers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const CYCLES = Number(process.env.FAILOVER_CYCLES ?? 10);
const POLL_MS = 250;
const TIMEOUT_MS = 300;
const PROBE_MS = 500;
const HOLD_MS = 1500;

const ts = (m: Message) => Date.parse(String(m.json.ts));
const tcp = (m: Message) => String(m.json.channel).startsWith('tcp://');
const mstp = (m: Message) => String(m.json.channel).startsWith('mstp:');
const good = (m: Message) => m.json.quality === 'good';
/** The largest time between successive samples (by their poll time), ms. */
const largestGap = (ms: Message[]) => ms.slice(1).reduce((g, m, i) => Math.max(g, ts(m) - ts(ms[i]!)), 0);

describe('failover against independent peers', () => {
  it(
    `pymodbus primary, bacserv backup on a plain pty pair: ${CYCLES} cut/heal cycles, critical point on the backup after one failed read, normal point in rhythm, nothing twice`,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'edgeferry-failover-peers-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      writeFileSync(join(dir, 'spec.json'), JSON.stringify({ units: { '1': [{ area: 'holding', address: 0, words: [215, 7] }] } }));
      const plc = await startPeer(PYTHON, [PYMODBUS_SERVER, 'tcp', join(dir, 'spec.json')], /^listening \d+/);
      cleanups.push(() => plc.stop());
      const proxy = await startProxy({ port: Number(plc.ready[1]) });
      cleanups.push(() => proxy.stop());
      const monitor = new MstpMonitor({ usageTimeoutMs: 20, slackMs: 2 });
      const line = await ptyPair(dir, 'tty', (_from, at, octets) => monitor.feed(octets, at));
      cleanups.push(() => line.stop());
      const bacserv = await startBacserv(line.b);
      cleanups.push(() => bacserv.stop());
      const broker = await startMosquitto();
      cleanups.push(() => broker.stop());
      const sub = await Subscriber.connect(broker, 's/g/#');
      cleanups.push(() => sub.close());
      const tg = makeGateway(
        gatewayYaml(broker),
        `version: 1
devices:
  - name: boiler
    driver: modbus_tcp
    poll_interval_ms: ${POLL_MS}
    connection: { host: 127.0.0.1, port: ${proxy.port}, timeout_ms: ${TIMEOUT_MS} }
    link: { probe_interval_ms: ${PROBE_MS}, failures_before_down: 1, backoff_min_ms: 100, backoff_max_ms: 400 }
    points:
      - { name: temp, address: 0, scale: 0.1, priority: critical }
      - { name: pressure, address: 1 }
    backup:
      driver: bacnet_mstp
      connection: { port: ${line.a}, baud_rate: 38400, station: 3, max_master: 10, mac: 5, device_instance: 1234, timeout_ms: 2000 }
      link: { probe_interval_ms: 1000 }
      switch_back_after_ms: ${HOLD_MS}
      points:
        - { name: temp, object: analog-input:1 }
`,
      );
      cleanups.push(() => tg.cleanup());
      await tg.gw.start();
      const on = (point: string) => sub.messages.filter((m) => m.topic === `s/g/boiler/${point}` && !m.retain);
      await sub.waitFor(() => on('temp').filter(tcp).length >= 3, 15_000, 'temp over TCP');
      await sub.waitFor(
        (m) => m.topic === 's/g/status/boiler' && (m.json.failover as { backup_state?: string })?.backup_state === 'up',
        15_000,
        'backup probed up',
      );

      const rows: { critical: number; failedBeforeBackup: number; normal: number; failback: number }[] = [];
      for (let c = 1; c <= CYCLES; c++) {
        const begin = Date.now();
        // A second of normal service before the cut.
        await sub.waitFor(() => on('temp').filter((m) => tcp(m) && good(m) && ts(m) > begin + 1000).length > 0, 15_000, `cycle ${c}: temp over TCP`);
        proxy.mode({ kind: 'blackhole' });
        const cut = Date.now();
        await sub.waitFor(() => on('temp').filter((m) => mstp(m) && good(m) && ts(m) > cut).length >= 3, 15_000, `cycle ${c}: temp over MS/TP`);
        proxy.mode({ kind: 'pass' });
        const healed = Date.now();
        const back = await sub.waitFor((m) => m.topic === 's/g/boiler/temp' && tcp(m) && good(m) && ts(m) > healed, 20_000, `cycle ${c}: temp back on TCP`);
        // Two more intervals, so that the normal point's samples around the failback are in.
        await sub.waitFor(() => on('pressure').filter((m) => ts(m) > ts(back) + 2 * POLL_MS).length > 0, 10_000, `cycle ${c}: pressure after failback`);
        const inCycle = (m: Message) => ts(m) >= begin && ts(m) <= ts(back) + 2 * POLL_MS;
        const temps = on('temp').filter((m) => inCycle(m) && good(m));
        // The primary serves the normal point from the first good sample after the path healed.
        const served = on('pressure').filter((m) => inCycle(m) && good(m) && tcp(m) && ts(m) > healed);
        // Failed reads of the critical point after the cut, before its first sample over the backup.
        const afterCut = on('temp').filter((m) => ts(m) >= cut - POLL_MS);
        const firstBackup = afterCut.findIndex(mstp);
        const failedBeforeBackup = afterCut.slice(0, firstBackup < 0 ? afterCut.length : firstBackup).filter((m) => !good(m)).length;
        const row = { critical: largestGap(temps), failedBeforeBackup, normal: largestGap(served), failback: ts(back) - healed };
        rows.push(row);
        if (row.critical >= 1000) {
          // For whoever has to find out why: every temp sample of the cycle and the wire during the largest gap.
          const i = temps.findIndex((m, k) => k > 0 && ts(m) - ts(temps[k - 1]!) === row.critical);
          const from = ts(temps[i - 1]!);
          console.log(
            on('temp')
              .filter(inCycle)
              .map((m) => `${ts(m) - from} ${String(m.json.channel).slice(0, 4)} ${m.json.quality} ${m.json.reason ?? ''}`)
              .join('\n'),
          );
          console.log(
            monitor.frames
              .filter((f) => f.at >= from && f.at <= from + row.critical)
              .map((f) => `${(f.at - from).toFixed(1)} ${frameName(f.type)} ${f.source}→${f.dest}`)
              .join(' | '),
          );
        }
        console.log(
          `cycle ${c}: critical point on the backup after ${row.failedBeforeBackup} failed read(s), its largest gap ${row.critical} ms; normal point's largest gap while the primary serves ${row.normal} ms (interval ${POLL_MS}); ` +
            `failback ${row.failback} ms after the heal (hold ${HOLD_MS})`,
        );
      }
      // The backup stops answering (bacserv frozen by SIGSTOP for 1.2 s) while the critical point is
      // still on it and the primary is healthy again: its requests go unanswered, and the normal
      // point, read over the healthy primary, must not wait for them.
      proxy.mode({ kind: 'blackhole' });
      const cut = Date.now();
      await sub.waitFor(() => on('temp').filter((m) => mstp(m) && good(m) && ts(m) > cut).length >= 2, 15_000, 'stall: temp over MS/TP');
      proxy.mode({ kind: 'pass' });
      const healed = Date.now();
      await sub.waitFor(() => on('pressure').filter((m) => tcp(m) && good(m) && ts(m) > healed).length > 0, 15_000, 'stall: pressure over TCP again');
      bacserv.proc.kill('SIGSTOP');
      const frozen = Date.now();
      await sub.waitFor(() => on('pressure').filter((m) => ts(m) > frozen + 1200).length > 0, 10_000, 'stall: 1.2 s of pressure samples');
      bacserv.proc.kill('SIGCONT');
      const thawed = Date.now();
      await sub.waitFor((m) => m.topic === 's/g/boiler/temp' && tcp(m) && good(m) && ts(m) > healed, 20_000, 'stall: temp back on TCP');
      const stalled = on('pressure').filter((m) => good(m) && ts(m) >= frozen - POLL_MS && ts(m) <= thawed + POLL_MS);
      const stallGap = largestGap(stalled);
      console.log(`backup frozen for ${thawed - frozen} ms with the critical point on it: normal point's largest gap ${stallGap} ms (interval ${POLL_MS})`);
      // A poll of the normal point that waited for the backup's 2 s timeout would show here.
      expect(stallGap, 'normal point while the backup does not answer').toBeLessThan(4 * POLL_MS);

      const t = tallyTokens(monitor.frames);
      const passes = [...t.passes.values()].reduce((a, b) => a + b, 0);
      const retries = [...t.retries.values()].reduce((a, b) => a + b, 0);
      console.log(
        `MS/TP line over the run: ${passes} token passes, ${retries} retries, tokens lost ${[...t.lost.values()].reduce((a, b) => a + b, 0)}; ` +
          `worst critical gap ${Math.max(...rows.map((r) => r.critical))} ms, worst normal gap ${Math.max(...rows.map((r) => r.normal))} ms; ` +
          // On a starved machine socat itself (the pty pair's relay) is descheduled and delivers late, so the line's rules are printed, not asserted, here.
          `Clause 9 monitor violations ${monitor.violations.length}`,
      );
      for (const [i, r] of rows.entries()) {
        expect(r.failedBeforeBackup, `cycle ${i + 1}: failed reads of the critical point before the backup`).toBeLessThanOrEqual(1);
        expect(r.normal, `cycle ${i + 1}: the normal point's largest gap while the primary serves it`).toBeLessThan(4 * POLL_MS);
        expect(r.failback, `cycle ${i + 1}: failback only after the hold`).toBeGreaterThanOrEqual(HOLD_MS);
      }
      // Per point: every seq once, increasing, and poll times that never go back.
      for (const point of ['temp', 'pressure']) {
        const ms = on(point);
        const seqs = ms.map((m) => Number(m.json.seq));
        expect(new Set(seqs).size, `${point}: no seq twice`).toBe(seqs.length);
        expect(
          seqs.every((s, i) => i === 0 || s > seqs[i - 1]!),
          `${point}: seq increasing`,
        ).toBe(true);
        expect(
          ms.every((m, i) => i === 0 || ts(m) >= ts(ms[i - 1]!)),
          `${point}: poll times in order`,
        ).toBe(true);
      }
    },
    60_000 + CYCLES * 15_000,
  );
});
