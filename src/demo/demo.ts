// `edgeferry demo`: a simulated plant (one Modbus TCP simulator per Modbus device of
// config/demo.yaml, one OPC UA server for the OPC UA devices, a BACnet MS/TP device on a virtual
// RS485 line for a backup channel, whose primary's path the demo cuts now and then),
// an embedded aedes broker on loopback with TLS (certificates made now, in a temp dir), the real
// gateway in between, and a TLS subscriber that prints what arrives. Ctrl-C stops it all.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { stopDeadline } from '../core/stop-deadline.js';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { DRIVERS } from '../../drivers/registry.js';
import type { ModbusPointConfig, ModbusTcpConnectionConfig } from '../../drivers/modbus/schema.js';
import { start as startBroker } from '../../simulators/mqtt-broker/index.js';
import { registersFromPoints } from '../../simulators/modbus/from-device-map.js';
import { start as startSimulator, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { startOpcuaSim, type OpcuaSimulator } from '../../simulators/opcua/index.js';
import { startMstpDevice } from '../../simulators/bacnet-mstp/index.js';
import { startRs485Bus } from '../../simulators/rs485-bus.js';
import { startProxy, type TcpProxy } from '../../simulators/tcp-proxy/index.js';
import { startElCamera } from '../../simulators/el-camera/index.js';
import type { MstpConnectionConfig } from '../../drivers/bacnet-mstp/schema.js';
import type { OpcuaConnectionConfig } from '../../drivers/opcua/schema.js';
import { EXIT, type CliIo } from '../cli/io.js';
import { ConfigLoader } from '../config/load.js';
import { formatProblem } from '../config/yaml-file.js';
import { buildGateway } from '../gateway.js';
import { createLogger } from '../log.js';
import { createCa } from '../tls/certs.js';

export const DEMO_CONFIG = fileURLToPath(new URL('../../../config/demo.yaml', import.meta.url));
/** The EL model the demo's inference stage runs (--model: a model folder, e.g. models/el-defect). */
export const DEMO_MODEL = fileURLToPath(new URL('../../../models/el-defect-lite', import.meta.url));

export async function runDemo(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { seconds: { type: 'string' }, config: { type: 'string', default: DEMO_CONFIG }, model: { type: 'string', default: DEMO_MODEL } },
  });
  const { config, problems } = new ConfigLoader(DRIVERS, io.cwd).loadGatewayConfig(values.config);
  if (!config) {
    for (const p of problems) io.err(formatProblem(p));
    return EXIT.CONFIG_INVALID;
  }
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-demo-'));
  const cleanup: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  // The folder holds throwaway private keys: gone on every way out — a second Ctrl-C
  // (process.exit), a closed pipe, a stop that hangs (the deadline below).
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', removeDir);
  cleanup.push(() => void process.off('exit', removeDir));
  void io.stopRequested.then(() => stopDeadline(dir, STOP_DEADLINE_MS));
  try {
    const ca = createCa('edgeferry demo CA (throwaway)');
    const server = ca.issue('localhost', 'server');
    const caFile = join(dir, 'ca.pem');
    writeFileSync(caFile, ca.cert);
    const broker = await startBroker({ key: server.key, cert: server.cert });
    cleanup.unshift(() => broker.stop());

    const sims: ModbusSimulator[] = [];
    let uaSim: OpcuaSimulator | undefined;
    const socat = (process.env.PATH ?? '').split(':').some((p) => existsSync(join(p, 'socat')));
    /** Primary paths of devices with an MS/TP backup, which the demo cuts now and then. */
    const cuttable: { device: string; proxy: TcpProxy }[] = [];
    for (const d of config.devices) {
      if (d.backup?.device.driver === 'bacnet_mstp') {
        if (!socat) {
          io.err(`edgeferry demo: ${d.name} runs without its BACnet MS/TP backup (the virtual RS485 line needs socat: apt-get install socat)`);
          delete d.backup;
        } else {
          const bc = d.backup.device.connection as MstpConnectionConfig;
          const line = await startRs485Bus(2, { baudRate: bc.baud_rate, dir: mkdtempSync(join(dir, 'rs485-')) });
          cleanup.unshift(() => line.stop());
          const mstp = await startMstpDevice({
            path: line.ports[1]!,
            baudRate: bc.baud_rate,
            mac: bc.mac,
            deviceInstance: bc.device_instance ?? 1000 + bc.mac,
            maxMaster: bc.max_master,
          });
          cleanup.unshift(() => mstp.stop());
          bc.port = line.ports[0]!;
        }
      }
      if (d.driver === 'opcua') {
        // One simulated OPC UA server (with its own PKI) serves every OPC UA device of the demo.
        if (!uaSim) {
          const ua = await startOpcuaSim({ pkiDir: join(dir, 'opcua-server-pki') });
          uaSim = ua;
          cleanup.unshift(() => ua.stop());
        }
        const conn = d.connection as OpcuaConnectionConfig;
        conn.endpoint = uaSim.endpoint;
        conn.pki_dir = join(dir, 'opcua-client-pki');
        continue;
      }
      const sim = await startSimulator({ registers: registersFromPoints(d.points as ModbusPointConfig[]) });
      cleanup.unshift(() => sim.stop());
      sims.push(sim);
      const conn = d.connection as ModbusTcpConnectionConfig;
      conn.host = '127.0.0.1';
      conn.port = sim.port;
      if (d.backup) {
        const proxy = await startProxy({ port: sim.port });
        cleanup.unshift(() => proxy.stop());
        cuttable.push({ device: d.name, proxy });
        conn.port = proxy.port;
      }
    }
    const g = config.gateway;
    if (g.inference?.enabled) {
      g.inference.inbox = join(dir, 'el-inbox');
      g.inference.model_dir = resolve(io.cwd, values.model);
    }
    g.mqtt.url = `mqtts://127.0.0.1:${broker.port}`;
    g.mqtt.tls.ca = caFile;
    g.buffer.path = join(dir, 'buffer.db');

    const gw = buildGateway(config, { log: createLogger(g.logging.level, undefined, g.logging.format), drivers: DRIVERS });
    await gw.start();
    cleanup.unshift(() => gw.stop());
    if (g.inference?.enabled) {
      const camera = startElCamera({ inbox: g.inference.inbox, rate: 2, stations: ['S1', 'S2'], seed: Date.now() % 100_000 });
      cleanup.unshift(() => camera.stop());
    }

    const root = `${g.site}/${g.gateway_id}/#`;
    io.err('');
    io.err(
      `edgeferry demo: ${sims.length} simulated Modbus PLCs${uaSim ? ' and an OPC UA server' : ''}${g.inference?.enabled ? ', an EL camera (2 images/s)' : ''} → gateway → TLS broker on 127.0.0.1:${broker.port}`,
    );
    io.err('see the data from another terminal with either:');
    io.err(`  mosquitto_sub -h 127.0.0.1 -p ${broker.port} --cafile ${caFile} -t '${root}' -v`);
    io.err(`  node ${fileURLToPath(new URL('../main.js', import.meta.url))} sub --url mqtts://127.0.0.1:${broker.port} --ca ${caFile} --topic '${root}'`);
    const writable = g.mqtt.commands.enabled && config.devices.flatMap((d) => d.points.filter((p) => p.writable).map((p) => ({ d: d.name, p })))[0];
    if (writable) {
      io.err(`write a setpoint (the outcome arrives on …/set/result, the next sample of ${writable.d}/${writable.p.name} shows it):`);
      io.err(
        `  mosquitto_pub -h 127.0.0.1 -p ${broker.port} --cafile ${caFile} -q 1 -t '${g.site}/${g.gateway_id}/${writable.d}/${writable.p.name}/set' -m '{"value": 180, "id": "demo-1"}'`,
      );
    }
    if (gw.healthPort)
      io.err(
        `status page: http://127.0.0.1:${gw.healthPort}/  health: http://127.0.0.1:${gw.healthPort}/healthz  metrics: http://127.0.0.1:${gw.healthPort}/metrics`,
      );
    if (g.inference?.enabled)
      io.err(
        `EL model: ${g.inference.model_dir} — derived from the ELPV dataset (© ZAE Bayern), CC BY-NC-SA 4.0: non-commercial use only; releases do not carry it (README, License).`,
      );
    if (cuttable.length)
      io.err(
        `failover: every 60 s the demo blackholes the Ethernet path of ${cuttable.map((c) => c.device).join(', ')} for 20 s; watch "channel" in its samples and its status topic.`,
      );
    io.err('Ctrl-C stops everything.');
    io.err('');
    const started = Date.now();
    const flipper = cuttable.length
      ? setInterval(() => {
          const phase = Math.floor((Date.now() - started) / 1000) % 60;
          for (const c of cuttable) {
            if (phase === 30) {
              c.proxy.mode({ kind: 'blackhole' });
              io.err(`edgeferry demo: cut the Ethernet path of ${c.device} (packets vanish); its critical points continue over BACnet MS/TP`);
            } else if (phase === 50) {
              c.proxy.mode({ kind: 'pass' });
              io.err(`edgeferry demo: restored the Ethernet path of ${c.device}; critical points go back after the hold time`);
            }
          }
        }, 1000)
      : undefined;
    cleanup.unshift(() => clearInterval(flipper));

    // Our own TLS subscriber shows decoded values here; one line per topic every 5 s at most.
    const watcher = mqtt.connect(g.mqtt.url, { ca: ca.cert, rejectUnauthorized: true, reconnectPeriod: 1000 });
    cleanup.unshift(() => watcher.endAsync(true));
    const lastShown = new Map<string, number>();
    watcher.on('connect', () => watcher.subscribe(root, { qos: 0 }));
    watcher.on('message', (topic, payload) => {
      const now = Date.now();
      if (now - (lastShown.get(topic) ?? 0) < 5000) return;
      lastShown.set(topic, now);
      io.out(`${topic} ${payload.toString()}`);
    });

    const seconds = values.seconds ? Number(values.seconds) : undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([io.stopRequested, new Promise<void>((r) => seconds !== undefined && (timer = setTimeout(r, seconds * 1000)))]);
    clearTimeout(timer);
    io.err('edgeferry demo: stopping');
    return EXIT.OK;
  } finally {
    for (const c of cleanup) await c();
  }
}

/** Ctrl-C ends the demo within this, whatever hangs. */
const STOP_DEADLINE_MS = 8000;
