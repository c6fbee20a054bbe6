// BACnet writes through command topics on a virtual RS485 line: WriteProperty of present-value at
// the point's priority to bacnet-stack's bacserv (an independent implementation) and to our MS/TP
// simulator; the result is ok, the value read back equals what was written, the next sample shows
// it, a null relinquishes the command, and a device's refusal comes back with its error class/code.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startMstpDevice } from '../../simulators/bacnet-mstp/index.js';
import { startMosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { ptyPair } from '../../simulators/serial-line.js';
import { Commander } from '../helpers/commander.js';
import { gatewayYaml, makeGateway } from '../helpers/gateway.js';
import { startBacserv } from '../peers/peers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const W = 'writable: true, write_min_interval_ms: 0';

/** A gateway on one end of a pty pair whose other end `device` serves, device instance `instance` at MAC 5. */
async function setup(device: (tty: string) => Promise<unknown>, instance: number, points: string) {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-writes-mstp-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const line = await ptyPair(dir);
  cleanups.push(() => line.stop());
  await device(line.b);
  const broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  const tg = makeGateway(
    gatewayYaml(broker, { mqtt: '  commands: { enabled: true }' }),
    `version: 1
devices:
  - name: dev
    driver: bacnet_mstp
    poll_interval_ms: 500
    link: { probe_interval_ms: 1000, failures_before_down: 1, backoff_min_ms: 200, backoff_max_ms: 1000 }
    connection: { port: ${line.a}, baud_rate: 38400, station: 3, max_master: 10, usage_timeout_ms: 100, mac: 5, device_instance: ${instance}, timeout_ms: 2000 }
    points:
${points}
`,
  );
  cleanups.push(() => tg.cleanup());
  await tg.gw.start();
  await tg.gw.commandsReady();
  const scada = await Commander.connect(broker);
  cleanups.push(() => scada.close());
  await scada.seen.waitFor((m) => m.topic === 's/g/status/dev' && m.json.state === 'up', 20_000, 'dev up');
  const sample = async (point: string, value: unknown) => {
    const after = Date.now();
    const s = await scada.seen.waitFor((m) => m.at >= after && m.topic === `s/g/dev/${point}`, 10_000, `a sample of ${point}`);
    expect(s.json.value, `${point} sample`).toEqual(value);
  };
  return { scada, sample };
}

describe('BACnet MS/TP writes', () => {
  it('bacnet-stack bacserv: analog-value:1 present-value at priority 8, read back and sampled', async () => {
    const { scada, sample } = await setup(
      async (tty) => {
        const p = await startBacserv(tty);
        cleanups.push(() => p.stop());
      },
      1234,
      `      - { name: av, object: analog-value:1, write_priority: 8, ${W} }
      - { name: ai, object: analog-input:1 }`,
    );
    expect(await scada.write('dev', 'av', { value: 42.25 })).toMatchObject({ outcome: 'ok', read_back: 42.25, read_back_quality: 'good' });
    await sample('av', 42.25);
    expect(await scada.write('dev', 'av', { value: -3.5 })).toMatchObject({ outcome: 'ok', read_back: -3.5 });
    // Not writable in the map: refused by the gateway, never sent.
    expect(await scada.write('dev', 'ai', { value: 1 })).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/not writable/) });
  });

  it('the MS/TP simulator: analog, binary and multi-state values; null relinquishes; a refusal carries the error class/code', async () => {
    const { scada, sample } = await setup(
      async (tty) => {
        const d = await startMstpDevice({ path: tty, mac: 5, deviceInstance: 2001, maxMaster: 10 });
        cleanups.push(() => d.stop());
      },
      2001,
      `      - { name: sp, object: analog-value:1, ${W} }
      - { name: valve, object: binary-output:1, ${W} }
      - { name: mode, object: multi-state-value:1, ${W} }
      - { name: flow, object: analog-output:7, ${W} }`,
    );
    expect(await scada.write('dev', 'sp', { value: 19.5 })).toMatchObject({ outcome: 'ok', read_back: 19.5 });
    await sample('sp', 19.5);
    expect(await scada.write('dev', 'valve', { value: false })).toMatchObject({ outcome: 'ok', read_back: false });
    expect(await scada.write('dev', 'mode', { value: 3 })).toMatchObject({ outcome: 'ok', read_back: 3 });
    expect(await scada.write('dev', 'mode', { value: 0 })).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/state number 1 or more/) });
    // Relinquished: the simulator's own value (22.5) is in force again.
    expect(await scada.write('dev', 'sp', { value: null })).toMatchObject({ outcome: 'ok', read_back: 22.5 });
    // An object the device does not have: its Error answer, class and code.
    expect(await scada.write('dev', 'flow', { value: 1 })).toMatchObject({ outcome: 'failed', code: 'object/unknown-object' });
  });
});
