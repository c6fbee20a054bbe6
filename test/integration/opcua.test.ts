// The OPC UA driver against the node-opcua simulator: every data type through the buffer to a
// real mosquitto, SignAndEncrypt, untrusted server certificates, and a server restart with
// CreateSession attempts that follow our backoff schedule.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from '../../src/buffer/sqlite.js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { opcua } from '../../drivers/opcua/index.js';
import type { OpcuaConnectionConfig, OpcuaPointConfig } from '../../drivers/opcua/schema.js';
import type { DeviceConfig } from '../../src/core/driver.js';
import { NotConnectedError } from '../../src/errors.js';
import { createCa } from '../../src/tls/certs.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { PLANT_NODES, startOpcuaSim, type OpcuaSimulator } from '../../simulators/opcua/index.js';
import { gatewayYaml, makeGateway } from '../helpers/gateway.js';
import { Subscriber } from '../helpers/subscriber.js';

const log = pino({ level: 'silent' });
const signal = new AbortController().signal;
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-opcua-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function sim(dir: string, port?: number): Promise<OpcuaSimulator> {
  const s = await startOpcuaSim({ pkiDir: join(dir, 'server-pki'), port, users: { operator: 'secret' } });
  cleanups.push(() => s.stop());
  return s;
}

const pointsYaml = Object.entries(PLANT_NODES)
  .map(([name, n]) => `      - { name: ${name}, node_id: "${n.nodeId}" }`)
  .join('\n');

function device(endpoint: string, conn: Partial<OpcuaConnectionConfig> = {}): DeviceConfig<OpcuaConnectionConfig, OpcuaPointConfig> {
  return {
    name: 'ua',
    driver: 'opcua',
    enabled: true,
    poll_interval_ms: 500,
    link: { probe_interval_ms: 1000, failures_before_down: 1, backoff_min_ms: 200, backoff_max_ms: 800 },
    connection: {
      endpoint,
      security_policy: 'None',
      security_mode: 'None',
      auth: 'anonymous',
      pki_dir: 'pki',
      trust_unknown_server: true,
      timeout_ms: 3000,
      max_nodes_per_read: 0,
      ...conn,
    },
    points: [],
  };
}

describe('opcua driver', () => {
  it('publishes every data type, with source and server timestamps, through the buffer to mosquitto', async () => {
    const dir = tmp();
    const s = await sim(dir);
    const broker: Mosquitto = await startMosquitto();
    cleanups.push(() => broker.stop());
    const sub = await Subscriber.connect(broker, 's/g/plc/#');
    cleanups.push(() => sub.close());
    const tg = makeGateway(
      gatewayYaml(broker),
      `version: 1\ndevices:\n  - name: plc\n    driver: opcua\n    poll_interval_ms: 300\n    connection: { endpoint: "${s.endpoint}", security_policy: None, security_mode: None, trust_unknown_server: true }\n    points:\n${pointsYaml}\n      - { name: missing, node_id: "ns=1;s=Line1.NoSuchThing" }\n`,
    );
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    const value = async (point: string) => (await sub.waitFor((m) => m.topic === `s/g/plc/${point}`, 20_000, point)).json;
    expect(await value('temperature')).toMatchObject({ quality: 'good', value: expect.any(Number) });
    expect(await value('pressure')).toMatchObject({ quality: 'good', value: expect.any(Number) });
    expect(await value('counter')).toMatchObject({ quality: 'good', value: expect.any(Number) });
    const energy = await value('energy');
    expect(energy.value as number).toBeGreaterThanOrEqual(2 ** 33);
    expect(await value('level')).toMatchObject({ quality: 'good', value: expect.any(Number) });
    expect(await value('running')).toMatchObject({ quality: 'good', value: expect.any(Boolean) });
    expect(await value('recipe')).toMatchObject({ quality: 'good', value: 'PET-500ml' });
    expect(await value('profile')).toMatchObject({ quality: 'good', value: [1.5, 2.5, 3.5] });
    const sp = await value('setpoint');
    expect(sp).toMatchObject({ quality: 'good', value: 42.5 });
    expect(Date.parse(sp.server_ts as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(await value('missing')).toMatchObject({ quality: 'bad', value: null, reason: expect.stringMatching(/^BadNodeIdUnknown \(0x80340000\)$/) });
  });

  /** The simulator, a broker and a running gateway whose device "plc" has `points` (YAML lines). */
  async function subscribedPlc(points: string, log?: pino.Logger) {
    const s = await sim(tmp());
    const broker: Mosquitto = await startMosquitto();
    cleanups.push(() => broker.stop());
    const sub = await Subscriber.connect(broker, 's/g/plc/#');
    cleanups.push(() => sub.close());
    const tg = makeGateway(
      gatewayYaml(broker),
      `version: 1
devices:
  - name: plc
    driver: opcua
    poll_interval_ms: 1000
    connection: { endpoint: "${s.endpoint}", security_policy: None, security_mode: None, trust_unknown_server: true }
    points:
${points}`,
      log,
    );
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    return { sub, tg };
  }

  it('subscribes: monitored items report changes, and a server-side absolute deadband suppresses small ones', async () => {
    const drift = PLANT_NODES.drift.nodeId;
    const { sub } = await subscribedPlc(`      - { name: drift_all, node_id: "${drift}", mode: subscribe, sampling_interval_ms: 100 }
      - { name: drift_db, node_id: "${drift}", mode: subscribe, sampling_interval_ms: 100, deadband_type: absolute, deadband: 1.0 }
      - { name: recipe, node_id: "${PLANT_NODES.recipe.nodeId}", mode: subscribe }
      - { name: tank_pct, node_id: "${PLANT_NODES.tank.nodeId}", mode: subscribe, sampling_interval_ms: 100, deadband_type: percent, deadband: 2 }
`);
    expect((await sub.waitFor((m) => m.topic === 's/g/plc/recipe', 20_000, 'recipe')).json).toMatchObject({ value: 'PET-500ml', quality: 'good' });
    const values = (point: string) => sub.messages.filter((m) => m.topic === `s/g/plc/${point}`).map((m) => m.json.value as number);
    await sub.waitFor(() => values('drift_db').length >= 4, 20_000, '4 deadband reports');
    const db = values('drift_db');
    const diffs = db.slice(1).map((v, i) => v - db[i]!);
    expect(diffs.every((d) => d > 1.0)).toBe(true);
    // Without the deadband every 0.1 step is reported: many more messages over the same time.
    expect(values('drift_all').length).toBeGreaterThan(3 * db.length);
    // Percent of the EURange (0–100): 2 % means steps over 2.0.
    await sub.waitFor(() => values('tank_pct').length >= 3, 20_000, '3 percent-deadband reports');
    const tank = values('tank_pct');
    expect(tank.slice(1).every((v, i) => v - tank[i]! > 2.0)).toBe(true);
  });

  it('a subscribed point whose monitored item the server refuses becomes a bad sample with the status, and a log line', async () => {
    const logged: Record<string, unknown>[] = [];
    const log = pino({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line) as Record<string, unknown>) });
    const { sub } = await subscribedPlc(
      `      - { name: recipe, node_id: "${PLANT_NODES.recipe.nodeId}", mode: subscribe }
      - { name: ghost, node_id: "ns=1;s=NoSuchNode", mode: subscribe }
`,
      log,
    );
    const ghost = await sub.waitFor((m) => m.topic === 's/g/plc/ghost', 20_000, 'a sample for the refused item');
    expect(ghost.json).toMatchObject({
      value: null,
      quality: 'bad',
      reason: expect.stringMatching(/^monitored item refused: BadNodeIdUnknown \(0x80340000\)$/),
    });
    expect((await sub.waitFor((m) => m.topic === 's/g/plc/recipe', 20_000, 'the good item')).json).toMatchObject({ value: 'PET-500ml', quality: 'good' });
    expect(logged.some((l) => l.msg === 'monitored item refused by the server' && l.point === 'ghost' && l.status === 'BadNodeIdUnknown')).toBe(true);
  });

  it('browse writes a device map that passes check and, run, yields data', async () => {
    const dir = tmp();
    const s = await sim(dir);
    const cli = join(import.meta.dirname, '../../dist/src/main.js');
    const out = join(dir, 'browsed.yaml');
    // Not spawnSync: the simulator runs in this process and must keep answering.
    const r = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
      const p = spawn(
        process.execPath,
        [cli, 'browse', s.endpoint, '--security-policy', 'None', '--security-mode', 'None', '--trust-server', '--name', 'plc', '--out', out],
        { cwd: dir },
      );
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.once('exit', (status) => resolve({ status, stderr }));
    });
    expect(r.status, r.stderr).toBe(0);
    const yaml = readFileSync(out, 'utf8');
    expect(yaml).toContain('node_id: "ns=1;s=Line1.Temperature" } # Double');
    expect(yaml).toContain('# Double[]');
    expect(yaml).not.toContain('i=2253');
    const check = spawnSync(process.execPath, [cli, 'check', out], { cwd: dir, encoding: 'utf8' });
    expect(check.stdout).toBe('');
    expect(check.status).toBe(0);
    const broker: Mosquitto = await startMosquitto();
    cleanups.push(() => broker.stop());
    const sub = await Subscriber.connect(broker, 's/g/plc/#');
    cleanups.push(() => sub.close());
    const tg = makeGateway(gatewayYaml(broker), yaml.replace('security_mode: None', 'security_mode: None\n      trust_unknown_server: true'));
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    // The browsed name Line1.Recipe, in its topic as mqtt.topic_dot '_' makes it (docs/brokers.md).
    expect(yaml).toMatch(/name: [\w.]*Line1\.Recipe,/);
    const m = await sub.waitFor((x) => x.topic.endsWith('Line1_Recipe'), 20_000, 'recipe from the browsed map');
    expect(m.topic).not.toContain('.');
    expect(m.json).toMatchObject({ value: 'PET-500ml', quality: 'good' });
  });

  it('connects with Basic256Sha256 SignAndEncrypt and a username, splitting reads at the server limit', async () => {
    const dir = tmp();
    const s = await sim(dir);
    writeFileSync(join(dir, 'pw'), 'secret\n');
    const dev = device(s.endpoint, {
      security_policy: 'Basic256Sha256',
      security_mode: 'SignAndEncrypt',
      auth: 'username',
      username: 'operator',
      password_file: 'pw',
    });
    const link = opcua.createLink(dev, { log, baseDir: dir });
    cleanups.push(() => link.close());
    await link.open(signal, () => undefined);
    const points = Object.entries(PLANT_NODES).map(([name, n]) => ({
      name,
      node_id: n.nodeId,
      report: 'always' as const,
      deadband: 0,
      priority: 'normal' as const,
      writable: false,
      write_min_interval_ms: 1000,
      mode: 'poll' as const,
      sampling_interval_ms: 1000,
      queue_size: 10,
      deadband_type: 'none' as const,
    }));
    const driver = opcua.create({ ...dev, points }, { log, baseDir: dir });
    const readings = await driver.read(driver.plan(points), link, signal);
    // 9 points, server MaxNodesPerRead 4: three Read requests, all good.
    expect(readings.map((r) => r.quality)).toEqual(points.map(() => 'good'));
    expect(readings.find((r) => r.point === 'recipe')!.value).toBe('PET-500ml');
  });

  it.each([
    ['Basic256Sha256', 'Sign'],
    ['Aes128_Sha256_RsaOaep', 'SignAndEncrypt'],
    ['Aes256_Sha256_RsaPss', 'SignAndEncrypt'],
    ['Aes256_Sha256_RsaPss', 'Sign'],
  ] as const)('reads over %s / %s', async (policy, mode) => {
    const dir = tmp();
    const s = await sim(dir);
    const dev = device(s.endpoint, { security_policy: policy, security_mode: mode });
    const link = opcua.createLink(dev, { log, baseDir: dir });
    cleanups.push(() => link.close());
    await link.open(signal, () => undefined);
    const point = {
      name: 'sp',
      node_id: PLANT_NODES.setpoint.nodeId,
      report: 'always' as const,
      deadband: 0,
      priority: 'normal' as const,
      writable: false,
      write_min_interval_ms: 1000,
      mode: 'poll' as const,
      sampling_interval_ms: 1000,
      queue_size: 10,
      deadband_type: 'none' as const,
    };
    const driver = opcua.create({ ...dev, points: [point] }, { log, baseDir: dir });
    expect((await driver.read(driver.plan([point]), link, signal))[0]).toMatchObject({ value: 42.5, quality: 'good' });
  });

  it('authenticates with an X509 user certificate', async () => {
    const dir = tmp();
    const s = await sim(dir);
    const siteCa = createCa('site CA');
    await s.trustUserCa(siteCa.cert);
    const user = siteCa.issue('operator-station-3', 'client');
    writeFileSync(join(dir, 'user.pem'), user.cert);
    writeFileSync(join(dir, 'user.key'), user.key, { mode: 0o600 });
    const dev = device(s.endpoint, {
      security_policy: 'Basic256Sha256',
      security_mode: 'SignAndEncrypt',
      auth: 'certificate',
      user_certificate: 'user.pem',
      user_key: 'user.key',
    });
    const link = opcua.createLink(dev, { log, baseDir: dir });
    cleanups.push(() => link.close());
    await link.open(signal, () => undefined);
    await opcua.create({ ...dev, points: [] }, { log, baseDir: dir }).probe(link, signal);
  });

  it('refuses an untrusted server certificate with its thumbprint and where to put it', async () => {
    const dir = tmp();
    const s = await sim(dir);
    const dev = device(s.endpoint, { security_policy: 'Basic256Sha256', security_mode: 'SignAndEncrypt', trust_unknown_server: false });
    const link = opcua.createLink(dev, { log, baseDir: dir });
    cleanups.push(() => link.close());
    const err = await link
      .open(signal, () => undefined)
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(err).toBeInstanceOf(NotConnectedError);
    const advice =
      /server certificate \(SHA-1 thumbprint ([0-9a-f]{40})\) is not trusted; if it is the right server, move .*pki\/rejected\/.*\[([0-9a-f]{40})\]\.pem to .*pki\/trusted\/certs\/ \(or set trust_unknown_server: true/;
    expect(err!.message).toMatch(advice);
    // Every later attempt says the same (the certificate is already in rejected/ by then).
    const again = await link
      .open(signal, () => undefined)
      .then(
        () => '',
        (e: Error) => e.message,
      );
    expect(again).toBe(err!.message);
    const [, thumb, inName] = advice.exec(again)!;
    expect(inName).toBe(thumb);
    // Following the advice works.
    const rejected = readdirSync(join(dir, 'pki', 'rejected'));
    mkdirSync(join(dir, 'pki', 'trusted', 'certs'), { recursive: true });
    const { renameSync } = await import('node:fs');
    for (const f of rejected) renameSync(join(dir, 'pki', 'rejected', f), join(dir, 'pki', 'trusted', 'certs', f));
    await link.open(signal, () => undefined);
  });

  it('comes back by itself after a server restart, with connection attempts on our backoff schedule', async () => {
    const dir = tmp();
    let s = await sim(dir);
    const port = s.port;
    const yaml = `version: 1\ndevices:\n  - name: plc\n    driver: opcua\n    poll_interval_ms: 200\n    connection: { endpoint: "${s.endpoint}", security_policy: None, security_mode: None, trust_unknown_server: true, timeout_ms: 1000 }\n    link: { probe_interval_ms: 500, failures_before_down: 1, backoff_min_ms: 200, backoff_max_ms: 800 }\n    points:\n      - { name: counter, node_id: "${PLANT_NODES.counter.nodeId}" }\n      - { name: temperature, node_id: "${PLANT_NODES.temperature.nodeId}", mode: subscribe, sampling_interval_ms: 200 }\n`;
    const { capturedGateway } = await import('../helpers/captured-gateway.js');
    const { gw, polls, statuses, until, dir: gwDir } = await capturedGateway(cleanups, yaml);
    await until(() => polls.length >= 2, 20_000, 'polling');
    await s.stop();
    await until(() => statuses.some((x) => x.h.state === 'down'), 10_000, 'down');
    // While the server is away, something else listens on its port and counts connection attempts.
    let attempts = 0;
    const counter: Server = createServer((c) => {
      attempts++;
      c.destroy();
    });
    await new Promise<void>((r) => counter.listen(port, '127.0.0.1', () => r()));
    await new Promise((r) => setTimeout(r, 3000));
    await new Promise<void>((r) => counter.close(() => r()));
    // Backoff 200 → 800 ms with jitter (each delay ≥ 100 ms): at most ~30 attempts in 3 s, and in
    // practice a handful. A second, competing reconnect loop would show hundreds.
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(30);
    s = await startOpcuaSim({ pkiDir: join(dir, 'server-pki'), port });
    cleanups.push(() => s.stop());
    const back = Date.now();
    await until(() => polls.some((p) => p.ts > back), 20_000, 'data after restart');
    // The subscription was recreated on the new session: subscribed values flow again.
    const subscribedAfter = () => {
      const db = new Database(join(gwDir, 'buffer.db'), { readonly: true });
      try {
        return db.prepare("SELECT count(*) FROM samples WHERE point = 'temperature' AND ts > ?").pluck().get(back) as number;
      } finally {
        db.close();
      }
    };
    await until(() => subscribedAfter() > 0, 20_000, 'subscribed data after restart');
    expect(s.sessionsCreated).toBe(1);
    expect(gw.deviceStatus('plc')!.reconnects).toBeGreaterThanOrEqual(1);
  });
});
