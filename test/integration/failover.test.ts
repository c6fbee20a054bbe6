// Failover across transports: a boiler's critical point is read over Modbus TCP (through a
// fault-injecting proxy) and also addressed over BACnet MS/TP on a virtual RS485 line. Blackhole
// the TCP path: the point keeps arriving through MS/TP within probe interval + timeout + one poll.
// Heal it: the point returns to TCP only after the hysteresis time. Order and uniqueness per point
// are checked on what a subscriber of the real broker receives.
import { afterEach, describe, expect, it } from 'vitest';
import { startMstpDevice } from '../../simulators/bacnet-mstp/index.js';
import { start as startModbus } from '../../simulators/modbus/index.js';
import { startMosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { startRs485Bus } from '../../simulators/rs485-bus.js';
import { startProxy } from '../../simulators/tcp-proxy/index.js';
import { gatewayYaml, makeGateway } from '../helpers/gateway.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const PROBE_MS = 500;
const TIMEOUT_MS = 300;
const POLL_MS = 200;
const HOLD_MS = 1500;

describe('failover between channels', () => {
  it('reads critical points through MS/TP while Modbus TCP is blackholed, and goes back after the hold time', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const plc = await startModbus({
      registers: [
        { area: 'holding', address: 0, value: 215 },
        { area: 'holding', address: 1, value: 7 },
      ],
    });
    cleanups.push(() => plc.stop());
    const proxy = await startProxy({ port: plc.port });
    cleanups.push(() => proxy.stop());
    const bus = await startRs485Bus(2, { baudRate: 38400 });
    cleanups.push(() => bus.stop());
    const bacnet = await startMstpDevice({ path: bus.ports[1]!, mac: 5, deviceInstance: 1005, maxMaster: 7, usageTimeoutMs: 60 });
    cleanups.push(() => bacnet.stop());

    const sub = await Subscriber.connect(broker, 's/g/#');
    cleanups.push(() => sub.close());
    const devices = `version: 1
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
      connection: { port: ${bus.ports[0]}, station: 1, max_master: 7, usage_timeout_ms: 60, mac: 5, device_instance: 1005 }
      link: { probe_interval_ms: 1000 }
      switch_back_after_ms: ${HOLD_MS}
      points:
        - { name: temp, object: analog-input:1 }
`;
    const tg = makeGateway(gatewayYaml(broker), devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();

    const temps = () => sub.messages.filter((m) => m.topic === 's/g/boiler/temp');
    const via = (m: Message) => String(m.json.channel);
    const tcp = (m: Message) => via(m).startsWith('tcp://');
    const mstp = (m: Message) => via(m).startsWith('mstp:');
    await sub.waitFor(() => temps().filter(tcp).length >= 3, 15_000, 'temp over TCP');
    // The backup link is kept alive (probed) while the primary serves.
    await sub.waitFor(
      (m) => m.topic === 's/g/status/boiler' && (m.json.failover as { backup_state?: string })?.backup_state === 'up',
      15_000,
      'backup probed up',
    );

    proxy.mode({ kind: 'blackhole' });
    const cut = Date.now();
    const firstBackup = await sub.next((m) => m.topic === 's/g/boiler/temp' && mstp(m), 15_000, 'temp over MS/TP');
    const gapMs = Number(firstBackup.json.ts ? Date.parse(String(firstBackup.json.ts)) : 0) - cut;
    console.log(`failover: first MS/TP sample polled ${gapMs} ms after the blackhole (bound ${PROBE_MS + TIMEOUT_MS + POLL_MS} ms + MS/TP read)`);
    // probe interval + timeout + one poll, with slack for a loaded 2-core machine.
    expect(gapMs).toBeLessThan(PROBE_MS + TIMEOUT_MS + POLL_MS + 500);
    expect(firstBackup.json).toMatchObject({ quality: 'good' });
    expect(typeof firstBackup.json.value).toBe('number');
    const onBackup = await sub.waitFor(
      (m) => m.topic === 's/g/status/boiler' && (m.json.failover as { active?: string })?.active === 'backup',
      5000,
      'status on backup',
    );
    expect(onBackup.json).toMatchObject({ state: 'degraded', channel: expect.stringMatching(/^mstp:/) });
    // Times on the status topic are ISO 8601, the failover's too (docs/integration.md).
    expect((onBackup.json.failover as { since: unknown }).since).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Critical points keep coming through the backup.
    await sub.waitFor(() => temps().filter(mstp).length >= 5, 10_000, 'five MS/TP samples');

    proxy.mode({ kind: 'pass' });
    const healed = Date.now();
    // The non-critical point is back on the primary at once ...
    await sub.next((m) => m.topic === 's/g/boiler/pressure' && tcp(m) && m.json.quality === 'good', 10_000, 'pressure over TCP again');
    // ... the critical one only once the primary has been up for the hold time.
    const back = await sub.next((m) => m.topic === 's/g/boiler/temp' && tcp(m), 15_000, 'temp over TCP again');
    const backAfter = Date.parse(String(back.json.ts)) - healed;
    console.log(`failover: temp back on TCP ${backAfter} ms after the path healed (hold ${HOLD_MS} ms)`);
    expect(backAfter).toBeGreaterThanOrEqual(HOLD_MS);
    expect(back.json.value).toBe(21.5);
    const onPrimary = await sub.waitFor(
      (m) =>
        m.topic === 's/g/status/boiler' &&
        (m.json.failover as { active?: string })?.active === 'primary' &&
        (m.json.failover as { switches?: number }).switches === 2,
      5000,
      'status on primary',
    );
    expect(onPrimary.json).toMatchObject({ state: 'up', channel: expect.stringMatching(/^tcp:/) });
    await sub.waitFor(() => temps().filter((m) => tcp(m) && m.at > back.at).length >= 3, 10_000, 'temp over TCP after switching back');

    // Per point: sequence numbers and poll times strictly increase, nothing twice, and the
    // channel switched exactly twice.
    const t = temps().filter((m) => !m.retain);
    const seqs = t.map((m) => Number(m.json.seq));
    const times = t.map((m) => Date.parse(String(m.json.ts)));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs.every((s, i) => i === 0 || s > seqs[i - 1]!)).toBe(true);
    expect(
      times.every((x, i) => i === 0 || x > times[i - 1]!),
      t.map((m) => `${m.json.seq} ${m.json.ts} ${via(m).slice(0, 4)} ${m.json.quality} ${m.json.reason ?? ''}`).join('\n'),
    ).toBe(true);
    const switches = t.map(via).filter((c, i, all) => i > 0 && c !== all[i - 1]);
    expect(switches.length).toBe(2);
    const metrics = await tg.gw.metrics.registry.metrics();
    expect(metrics).toMatch(/edgeferry_failover_switches_total\{device="boiler",to="backup"\} 1/);
    expect(metrics).toMatch(/edgeferry_failover_switches_total\{device="boiler",to="primary"\} 1/);
  }, 90_000);
});
