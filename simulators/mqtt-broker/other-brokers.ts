// The MQTT brokers plants scale out to, as Debian 12 ships them, on loopback with mutual TLS for
// integration tests: NATS server 2.9 (JetStream and its MQTT listener; one node or a cluster of
// three) and RabbitMQ 3.10 with rabbitmq_mqtt. Like mosquitto.ts: stopped and started again on the
// same ports with their state kept (broker outages), killed hard (kill -9), removed on stop.
// Each speaks MQTT 3.1.1 only (docs/brokers.md).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, type KeyPair } from '../../src/tls/certs.js';
import { freePort } from '../free-port.js';

/** What tests use of a broker (mosquitto.ts's Mosquitto has all of it too). */
export interface TestBroker {
  port: number;
  url: string;
  dir: string;
  files: { ca: string; clientCert: string; clientKey: string };
  client: KeyPair;
  caPem: string;
  /** SIGKILL: no goodbye, as a power cut or the OOM killer would. */
  crash(): Promise<void>;
  /** SIGTERM and wait. */
  kill(): Promise<void>;
  /** Starts it again on the same port(s), with its stored state. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

interface Tls {
  dir: string;
  files: TestBroker['files'];
  server: { cert: string; key: string };
  client: KeyPair;
  caPem: string;
}

function tlsDir(prefix: string): Tls {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  const ca = createCa('edgeferry test CA');
  const server = ca.issue('localhost', 'server');
  const client = ca.issue('edgeferry-test-gateway', 'client');
  const f = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text, { mode: 0o644 });
    return p;
  };
  f('server.pem', server.cert);
  f('server.key', server.key);
  return {
    dir,
    files: { ca: f('ca.pem', ca.cert), clientCert: f('client.pem', client.cert), clientKey: f('client.key', client.key) },
    server: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') },
    client,
    caPem: ca.cert,
  };
}

/** Starts `cmd` in its own process group and waits for `ready` in its output (stdout or stderr). */
async function launch(cmd: string, args: string[], ready: RegExp, env: NodeJS.ProcessEnv, ms: number): Promise<{ proc: ChildProcess; log: () => string }> {
  const proc = spawn(cmd, args, { detached: true, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const ok = await new Promise<boolean>((resolve) => {
    const on = (d: Buffer) => {
      if (log.length < 262_144) log += d.toString();
      if (ready.test(log)) resolve(true);
    };
    proc.stdout.on('data', on);
    proc.stderr.on('data', on);
    proc.once('exit', () => resolve(false));
    proc.once('error', (err) => ((log += `\n${err.message}`), resolve(false)));
    setTimeout(() => resolve(false), ms).unref();
  });
  if (!ok) {
    await stopGroup(proc, 'SIGKILL');
    throw new Error(`${cmd} did not start within ${ms} ms; its output:\n${log.slice(-4000)}`);
  }
  return { proc, log: () => log };
}

/** Signals the whole process group (a shell script and what it started) and waits for the leader. */
async function stopGroup(p: ChildProcess | undefined, signal: NodeJS.Signals, killAfterMs = 15_000): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  const send = (s: NodeJS.Signals) => {
    try {
      process.kill(-p.pid!, s);
    } catch {
      /* already gone */
    }
  };
  send(signal);
  const timer = setTimeout(() => send('SIGKILL'), killAfterMs);
  await exited;
  clearTimeout(timer);
  // Children of the group that outlive the leader (an Erlang VM behind its start script).
  send('SIGKILL');
}

export const NATS_BIN = process.env.NATS_BIN ?? '/usr/sbin/nats-server';

export interface NatsOptions {
  /** A JetStream cluster of this many nodes (3: the MQTT sessions and retained messages are replicated). */
  nodes?: number;
  /**
   * One node's configuration as a user would write it (docs/brokers.md's block): its paths under
   * /etc/nats/ and /var/lib/nats/ and its MQTT port 8883 are put here; the NATS client port goes on
   * loopback. Instead of the configuration made here.
   */
  conf?: string;
}

export interface NatsBroker extends TestBroker {
  /** Every node's MQTT URL (nodes > 1); `url` is the first. */
  urls: string[];
  /** Kills one node hard (kill -9). */
  crashNode(i: number): Promise<void>;
  restartNode(i: number): Promise<void>;
}

/** NATS server with JetStream and its MQTT listener (mutual TLS), one node or a cluster. */
export async function startNats(opts: NatsOptions = {}): Promise<NatsBroker> {
  if (!existsSync(NATS_BIN)) throw new Error(`${NATS_BIN} missing: apt-get install -y nats-server`);
  const n = opts.nodes ?? 1;
  const t = tlsDir('edgeferry-nats-');
  const ports = await Promise.all(Array.from({ length: n }, async () => ({ mqtt: await freePort(), client: await freePort(), cluster: await freePort() })));
  const conf = (i: number) => {
    const p = ports[i]!;
    const path = join(t.dir, `n${i}.conf`);
    if (opts.conf) {
      const text = opts.conf
        .replaceAll('/etc/nats/', `${t.dir}/`)
        .replaceAll('/var/lib/nats/', `${join(t.dir, `js${i}`)}/`)
        .replace(/\b0\.0\.0\.0:8883\b/, `127.0.0.1:${p.mqtt}`);
      writeFileSync(path, `${text}\nlisten: 127.0.0.1:${p.client}\n`);
      return path;
    }
    writeFileSync(
      path,
      [
        `server_name: n${i}`,
        `listen: 127.0.0.1:${p.client}`,
        `jetstream { store_dir: "${join(t.dir, `js${i}`)}" }`,
        `mqtt {`,
        `  listen: 127.0.0.1:${p.mqtt}`,
        `  tls { cert_file: "${t.server.cert}", key_file: "${t.server.key}", ca_file: "${t.files.ca}", verify: true, timeout: 5 }`,
        // Replicated MQTT sessions and retained messages: a cluster keeps them on three nodes.
        n > 1 ? `  stream_replicas: ${Math.min(3, n)}` : '',
        `}`,
        n > 1
          ? `cluster { name: edgeferry-test, listen: 127.0.0.1:${p.cluster}, routes: [${ports
              .filter((_, j) => j !== i)
              .map((q) => `"nats-route://127.0.0.1:${q.cluster}"`)
              .join(', ')}] }`
          : '',
        '',
      ]
        .filter((l) => l !== '')
        .join('\n'),
    );
    return path;
  };
  const procs: (ChildProcess | undefined)[] = [];
  const start = async (i: number) => {
    procs[i] = (await launch(NATS_BIN, ['-c', conf(i)], /Server is ready/, {}, 30_000)).proc;
  };
  try {
    await Promise.all(ports.map((_, i) => start(i)));
  } catch (err) {
    await Promise.all(procs.map((p) => stopGroup(p, 'SIGKILL')));
    rmSync(t.dir, { recursive: true, force: true });
    throw err;
  }
  const urls = ports.map((p) => `mqtts://127.0.0.1:${p.mqtt}`);
  const all = (signal: NodeJS.Signals) => Promise.all(procs.map((p) => stopGroup(p, signal))).then(() => undefined);
  return {
    port: ports[0]!.mqtt,
    url: urls[0]!,
    urls,
    dir: t.dir,
    files: t.files,
    client: t.client,
    caPem: t.caPem,
    crash: () => all('SIGKILL'),
    kill: () => all('SIGTERM'),
    restart: () => Promise.all(ports.map((_, i) => start(i))).then(() => undefined),
    crashNode: (i) => stopGroup(procs[i], 'SIGKILL'),
    restartNode: (i) => start(i),
    stop: async () => {
      await all('SIGTERM');
      rmSync(t.dir, { recursive: true, force: true });
    },
  };
}

export const RABBITMQ_BIN = process.env.RABBITMQ_BIN ?? '/usr/lib/rabbitmq/bin/rabbitmq-server';

/** RabbitMQ with rabbitmq_mqtt on a mutual-TLS MQTT listener; its own Erlang port mapper (epmd) on a port of its own. */
export async function startRabbitMq(opts: { conf?: string } = {}): Promise<TestBroker> {
  if (!existsSync(RABBITMQ_BIN)) throw new Error(`${RABBITMQ_BIN} missing: apt-get install -y rabbitmq-server`);
  const t = tlsDir('edgeferry-rabbit-');
  const [mqttPort, amqpPort, epmdPort, distPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  // opts.conf: rabbitmq.conf as a user would write it (docs/brokers.md's block), its paths under
  // /etc/rabbitmq/ and MQTT port 8883 put here, AMQP on loopback.
  const fromUser = opts.conf?.replaceAll('/etc/rabbitmq/', `${t.dir}/`).replace(/^(mqtt\.listeners\.ssl\.default\s*=\s*)8883$/m, `$1127.0.0.1:${mqttPort}`);
  writeFileSync(
    join(t.dir, 'rabbitmq.conf'),
    fromUser !== undefined
      ? `${fromUser}\nlisteners.tcp.default = 127.0.0.1:${amqpPort}\n`
      : [
          `listeners.tcp.default = 127.0.0.1:${amqpPort}`,
          'mqtt.listeners.tcp = none',
          `mqtt.listeners.ssl.default = 127.0.0.1:${mqttPort}`,
          `ssl_options.cacertfile = ${t.files.ca}`,
          `ssl_options.certfile = ${t.server.cert}`,
          `ssl_options.keyfile = ${t.server.key}`,
          'ssl_options.verify = verify_peer',
          'ssl_options.fail_if_no_peer_cert = true',
          'mqtt.allow_anonymous = true',
          '',
        ].join('\n'),
  );
  writeFileSync(join(t.dir, 'enabled_plugins'), '[rabbitmq_mqtt].\n');
  const node = `edgeferry${mqttPort}@localhost`;
  const env = {
    HOME: t.dir,
    RABBITMQ_NODENAME: node,
    RABBITMQ_CONFIG_FILE: join(t.dir, 'rabbitmq.conf'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(t.dir, 'enabled_plugins'),
    RABBITMQ_MNESIA_BASE: join(t.dir, 'mnesia'),
    RABBITMQ_LOG_BASE: join(t.dir, 'log'),
    RABBITMQ_LOGS: '-',
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_DIST_PORT: String(distPort),
  };
  let proc: ChildProcess | undefined;
  const start = async () => {
    proc = (await launch(RABBITMQ_BIN, [], /Server startup complete/, env, 90_000)).proc;
  };
  const epmdKill = () => {
    try {
      execFileSync('epmd', ['-port', String(epmdPort), '-kill'], { stdio: 'ignore', env: { ...process.env, ERL_EPMD_PORT: String(epmdPort) } });
    } catch {
      /* not running */
    }
  };
  try {
    await start().catch(async (err: unknown) => {
      // Once, under a loaded machine, the node printed nothing in 90 s: a second start, said aloud.
      console.error(`rabbitmq-server: first start failed (${(err as Error).message.split('\n')[0]}); starting it again`);
      await stopGroup(proc, 'SIGKILL');
      epmdKill();
      rmSync(join(t.dir, 'mnesia'), { recursive: true, force: true });
      await start();
    });
  } catch (err) {
    epmdKill();
    rmSync(t.dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port: mqttPort,
    url: `mqtts://127.0.0.1:${mqttPort}`,
    dir: t.dir,
    files: t.files,
    client: t.client,
    caPem: t.caPem,
    crash: () => stopGroup(proc, 'SIGKILL'),
    kill: () => stopGroup(proc, 'SIGTERM'),
    restart: start,
    stop: async () => {
      await stopGroup(proc, 'SIGTERM');
      epmdKill();
      rmSync(t.dir, { recursive: true, force: true });
    },
  };
}
