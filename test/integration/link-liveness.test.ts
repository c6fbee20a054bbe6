// Link liveness through a fault-injecting proxy: a silently blackholed link is found within one
// probe interval plus the timeout, the other devices keep their rhythm, the device comes back by
// itself, and nothing is left pending; a PLC restarted on its port is reconnected with backoff.
import { afterEach, describe, expect, it } from 'vitest';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { startProxy, type TcpProxy } from '../../simulators/tcp-proxy/index.js';
import { capturedGateway } from '../helpers/captured-gateway.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function device(name: string, port: number, extra = ''): string {
  return `  - name: ${name}
    driver: modbus_tcp
    poll_interval_ms: 200
    connection: { host: 127.0.0.1, port: ${port}, timeout_ms: 300 }
    link: { probe_interval_ms: 500, failures_before_down: 1, backoff_min_ms: 100, backoff_max_ms: 400 }
    points:
      - { name: v, address: 0 }
${extra}`;
}

async function sim(): Promise<ModbusSimulator> {
  const s = await startSim({ registers: [{ area: 'holding', address: 0, value: 7 }] });
  cleanups.push(() => s.stop());
  return s;
}

describe('link liveness', () => {
  it('finds a silently blackholed link within probe interval + timeout, keeps others on time, recovers, leaks nothing', async () => {
    const behind = await sim();
    const other = await sim();
    const proxy: TcpProxy = await startProxy({ port: behind.port });
    cleanups.push(() => proxy.stop());
    const resourcesBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'TCPSocketWrap').length;
    const { gw, statuses, polls, until } = await capturedGateway(cleanups, `version: 1\ndevices:\n${device('far', proxy.port)}${device('near', other.port)}`);
    await until(() => polls.filter((p) => p.device === 'far').length >= 3, 10_000, 'far polling');

    // Packets vanish, no RST: only the gateway's own timeouts and probes can notice.
    proxy.mode({ kind: 'blackhole' });
    const cut = Date.now();
    await until(() => statuses.some((s) => s.device === 'far' && s.h.state === 'down' && s.at > cut), 10_000, 'far down');
    const downAt = statuses.find((s) => s.device === 'far' && s.h.state === 'down' && s.at > cut)!.at;
    // probe_interval 500 ms + timeout 300 ms; polls every 200 ms find it sooner. Slack for a loaded box.
    expect(downAt - cut).toBeLessThan(500 + 300 + 700);

    const mark = Date.now();
    await until(() => polls.filter((p) => p.device === 'near' && p.ts > mark).length >= 8, 10_000, 'near keeps polling');
    const near = polls.filter((p) => p.device === 'near' && p.ts > mark).map((p) => p.ts);
    expect(Math.max(...near.slice(1).map((t, i) => t - near[i]!))).toBeLessThan(600);

    proxy.mode({ kind: 'pass' });
    const healed = Date.now();
    await until(() => statuses.some((s) => s.device === 'far' && s.h.state === 'up' && s.at > healed), 10_000, 'far up again');
    await until(() => polls.some((p) => p.device === 'far' && p.ts > healed), 5000, 'far data again');
    expect(gw.deviceStatus('far')!.reconnects).toBeGreaterThanOrEqual(1);
    expect(gw.deviceStatus('far')!.timeouts).toBeGreaterThanOrEqual(1);

    await gw.stop();
    expect(gw.linkPending()).toBe(0);
    // Closing is asynchronous on the far side (simulator, proxy); give the sockets a moment to go.
    const counted = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'TCPSocketWrap').length;
    for (let i = 0; i < 40 && counted() > resourcesBefore; i++) await new Promise((r) => setTimeout(r, 25));
    expect(counted()).toBeLessThanOrEqual(resourcesBefore);
  });

  it('reconnects on backoff when a PLC restarts on the same port, and data resumes', async () => {
    let plc = await sim();
    const port = plc.port;
    const { gw, statuses, polls, until } = await capturedGateway(cleanups, `version: 1\ndevices:\n${device('plc', port)}`);
    await until(() => polls.length >= 2, 10_000, 'polling');
    const stopAt = Date.now();
    await plc.stop();
    await until(() => statuses.some((s) => s.h.state === 'down' && s.at >= stopAt), 5000, 'down');
    plc = await startSim({ port, registers: [{ area: 'holding', address: 0, value: 8 }] });
    cleanups.push(() => plc.stop());
    const back = Date.now();
    await until(() => polls.some((p) => p.ts > back), 10_000, 'data after restart');
    expect(gw.deviceStatus('plc')).toMatchObject({ state: 'up' });
    expect(gw.deviceStatus('plc')!.reconnects).toBeGreaterThanOrEqual(1);
  });
});
