// Commands are never stale and never from the wrong user: a command published while the gateway
// was away is not applied when it comes back (clean session: the broker keeps nothing for it; a
// retained command is refused), and with the documented mosquitto ACL (docs/writes.md) only the
// SCADA user's commands reach the gateway.
import { afterEach, describe, expect, it } from 'vitest';
import { encodeRegisters } from '../../drivers/modbus/codec.js';
import { start as startModbus } from '../../simulators/modbus/index.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { Commander } from '../helpers/commander.js';
import { recipe } from '../../scripts/lib/doc-recipes.js';
import { gatewayYaml, makeGateway } from '../helpers/gateway.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function plant(broker: Mosquitto, protocol: 4 | 5 = 5) {
  const sim = await startModbus();
  cleanups.push(() => sim.stop());
  const devices = `version: 1
devices:
  - name: plc
    driver: modbus_tcp
    poll_interval_ms: 200
    connection: { host: 127.0.0.1, port: ${sim.port}, timeout_ms: 500 }
    points:
      - { name: setpoint, address: 10, type: uint16, writable: true, write_min_interval_ms: 0 }
`;
  const gateway = async () => {
    const tg = makeGateway(gatewayYaml(broker, { mqtt: `  protocol_version: ${protocol}\n  commands: { enabled: true }` }), devices);
    await tg.gw.start();
    await tg.gw.commandsReady();
    return tg;
  };
  return { sim, gateway };
}

describe('commands that must not be applied', () => {
  it.each([5, 4] as const)(
    'MQTT %i: a command published while the gateway was offline is not applied when it reconnects; a retained one is refused',
    async (protocol) => {
      const broker = await startMosquitto();
      cleanups.push(() => broker.stop());
      const { sim, gateway } = await plant(broker, protocol);
      const scada = await Commander.connect(broker);
      cleanups.push(() => scada.close());
      // Connected once (its command subscription existed), then away.
      const first = await gateway();
      expect(await scada.write('plc', 'setpoint', { value: 5 })).toMatchObject({ outcome: 'ok', read_back: 5 });
      await first.cleanup();

      const offline = await scada.send('plc', 'setpoint', { value: 77, deadline: Date.now() + 600_000 });
      const retained = await scada.send('plc', 'setpoint', { value: 88, deadline: Date.now() + 600_000 }, { retain: true });

      const second = await gateway();
      cleanups.push(() => second.cleanup());
      // The retained command is delivered on subscribe: answered, never applied.
      const r = (await scada.result(retained)).json;
      expect(r).toMatchObject({ outcome: 'refused', reason: expect.stringMatching(/retained message is never applied/) });
      // Polls run again (a sample after the restart), and a live command still works ...
      const since = Date.now();
      await scada.seen.waitFor((m) => m.at > since && m.topic === 's/g/plc/setpoint', 10_000, 'a sample after the restart');
      expect(sim.getWords('holding', 10, 1)).toEqual([5]);
      expect(await scada.write('plc', 'setpoint', { value: 6 })).toMatchObject({ outcome: 'ok', read_back: 6 });
      // ... and by then the offline one has had every chance to arrive: it never did.
      expect(scada.seen.messages.find((m) => m.topic.endsWith('/set/result') && m.json.id === offline)).toBeUndefined();
      await scada.seen.close().catch(() => undefined);
    },
  );

  it('MQTT 5: a retained command published while the gateway is connected is refused with its id, and nothing is written', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const { sim, gateway } = await plant(broker, 5);
    const scada = await Commander.connect(broker);
    cleanups.push(() => scada.close());
    const tg = await gateway();
    cleanups.push(() => tg.cleanup());
    expect(await scada.write('plc', 'setpoint', { value: 5 })).toMatchObject({ outcome: 'ok' });
    const id = await scada.send('plc', 'setpoint', { value: 99 }, { retain: true });
    expect((await scada.result(id)).json).toMatchObject({ id, outcome: 'refused', reason: expect.stringMatching(/retained message is never applied/) });
    expect(sim.getWords('holding', 10, 1)).toEqual([5]);
    // Polled since: the register still holds 5, and the gateway's samples say so too.
    const since = Date.now();
    await scada.seen.waitFor((m) => m.at > since && m.topic === 's/g/plc/setpoint' && m.json.value === 5, 10_000, 'a sample showing 5');
  });

  it('MQTT 3.1.1 (documented): a live retained command cannot be told apart and is applied once; replayed at the next connect it is refused with the same id', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const { sim, gateway } = await plant(broker, 4);
    const scada = await Commander.connect(broker);
    cleanups.push(() => scada.close());
    const first = await gateway();
    const id = await scada.send('plc', 'setpoint', { value: 42, deadline: Date.now() + 600_000 }, { retain: true });
    expect((await scada.result(id)).json).toMatchObject({ id, outcome: 'ok', read_back: 42 });
    await first.cleanup();
    const second = await gateway();
    cleanups.push(() => second.cleanup());
    const answers = await scada.seen.waitFor(
      (m) => m.topic.endsWith('/set/result') && m.json.id === id && m.json.outcome === 'refused',
      15_000,
      'the replayed retained command refused',
    );
    expect(answers.json.reason).toMatch(/retained message is never applied/);
    expect(sim.getWords('holding', 10, 1)).toEqual([42]);
  });

  it('with the example ACL, only the SCADA user can command; a viewer’s command never reaches the gateway', async () => {
    // The ACL of docs/writes.md as written, with this test's names: the gateway's certificate CN and site/gateway.
    const acl = recipe('writes.md', 'text mosquitto-acl').replaceAll('edgeferry-gw01', 'edgeferry-test-gateway').replaceAll('plant-a/gw-01', 's/g');
    const broker = await startMosquitto({ acl });
    cleanups.push(() => broker.stop());
    const { sim, gateway } = await plant(broker);
    const tg = await gateway();
    cleanups.push(() => tg.cleanup());
    const viewer = await Commander.connect(broker, broker.issueClient('viewer'));
    cleanups.push(() => viewer.close());
    const scada = await Commander.connect(broker, broker.issueClient('scada'));
    cleanups.push(() => scada.close());
    await scada.seen.waitFor((m) => m.topic === 's/g/plc/setpoint', 10_000, 'a first sample');

    // mosquitto refuses the viewer's publish (MQTT 5 PUBACK: Not authorized) and drops it.
    await expect(viewer.send('plc', 'setpoint', { value: 666 })).rejects.toThrow(/Not authorized/);
    // Commands are handled in the order they arrive: once the SCADA one after it is answered, the viewer's would have been.
    expect(await scada.write('plc', 'setpoint', { value: 12 })).toMatchObject({ outcome: 'ok', read_back: 12 });
    expect(scada.seen.messages.filter((m) => m.topic.endsWith('/set/result') && m.json.value === 666)).toEqual([]);
    expect(sim.getWords('holding', 10, 1)).toEqual(encodeRegisters(12, 'uint16', 'ABCD'));
  });
});
