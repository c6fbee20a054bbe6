// The gateway against OPC UA servers nobody on the team wrote: open62541 1.4 (../shared/peers) —
// browse → check → run with security None, polled and subscribed points, a monitored item the
// server refuses, a server restart; then Basic256Sha256 SignAndEncrypt with mutual trust, set up
// the way an installer does it (the server refuses the gateway's certificate until told to trust it).
import { execFileSync, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../simulators/free-port.js';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { gatewayYaml, makeGateway } from '../helpers/gateway.js';
import { Subscriber, type Message } from '../helpers/subscriber.js';
import { open62541Certificate, peersBin, startPeer, type Peer } from '../peers/peers.js';

const cli = join(import.meta.dirname, '../../dist/src/main.js');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'edgeferry-peers-opcua-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** An open62541 server on `port`; `secure` starts the one with encrypting policies. */
async function open62541(port: number, secure?: { cert: string; key: string; trust?: string }): Promise<Peer & { sessions(): number }> {
  const bin = join(peersBin(), secure ? 'ref_server_sec_trust' : 'ref_server');
  const env: Record<string, string> = secure ? { UA_CERT: secure.cert, UA_KEY: secure.key, ...(secure.trust ? { UA_TRUST: secure.trust } : {}) } : {};
  const p = await startPeer(bin, [String(port), '127.0.0.1'], /New DiscoveryUrl added/, { env });
  cleanups.push(() => p.stop());
  return {
    ...p,
    sessions: () =>
      p
        .output()
        .split('\n')
        .filter((l) => l.includes('Session created')).length,
  };
}

async function broker(): Promise<{ b: Mosquitto; sub: Subscriber }> {
  const b = await startMosquitto();
  cleanups.push(() => b.stop());
  const sub = await Subscriber.connect(b, 's/g/#');
  cleanups.push(() => sub.close());
  return { b, sub };
}

const LINK = 'link: { probe_interval_ms: 500, failures_before_down: 1, backoff_min_ms: 200, backoff_max_ms: 1000 }';
const status = (device: string, state: string) => (m: Message) => m.topic === `s/g/status/${device}` && m.json.state === state;

describe('OPC UA against open62541', () => {
  it('browse → check → run: polled and subscribed values, a refused monitored item, and a server restart with one new session', async () => {
    const dir = tmp();
    const port = await freePort();
    let server = await open62541(port);
    const endpoint = `opc.tcp://127.0.0.1:${port}`;
    const out = join(dir, 'plc.yaml');
    const browse = (...args: string[]) =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const p = spawn(process.execPath, [cli, 'browse', endpoint, '--name', 'plc', '--out', out, ...args], { cwd: dir });
        let stderr = '';
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.once('exit', (code) => resolve({ status: code, stderr }));
      });
    // This server has security None only; browse's default (Basic256Sha256) says what it offers.
    const refused = await browse();
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('the server offers no Basic256Sha256/SignAndEncrypt endpoint; it offers None/None');
    const browsed0 = await browse('--security-policy', 'None', '--security-mode', 'None');
    expect(browsed0.status, browsed0.stderr).toBe(0);
    const browsed = readFileSync(out, 'utf8');
    // The server's variables, whole names, and none of the Server object (nor the browsing session's diagnostics).
    expect(browsed).toContain('- { name: the_answer, node_id: "ns=1;s=the.answer" } # Int32');
    expect(browsed).toContain('- { name: Temperature, node_id: "ns=1;s=Temperature" } # Double');
    expect(browsed).toContain('- { name: Label, node_id: "ns=1;s=Label" } # String');
    expect(browsed).not.toMatch(/Diagnostics|ns=0;i=22/);
    expect(execFileSync(process.execPath, [cli, 'check', out], { cwd: dir, encoding: 'utf8' })).toBe('');
    const browsing = server.sessions();

    // The browsed map, edited as an engineer would: Temperature subscribed, one node that does not exist.
    const devices = browsed
      .replace('poll_interval_ms: 1000', `poll_interval_ms: 300\n    ${LINK}`)
      .replace('node_id: "ns=1;s=Temperature" }', 'node_id: "ns=1;s=Temperature", mode: subscribe, sampling_interval_ms: 100 }')
      .replace(/(    points:\n)/, '$1      - { name: ghost, node_id: "ns=1;s=NoSuchNode", mode: subscribe }\n');
    const { b, sub } = await broker();
    const tg = makeGateway(gatewayYaml(b), devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    const value = (point: string) => sub.waitFor((m) => m.topic === `s/g/plc/${point}`, 20_000, point);
    expect((await value('the_answer')).json).toMatchObject({ value: 42, quality: 'good' });
    expect((await value('Label')).json).toMatchObject({ quality: 'good', value: expect.any(String) });
    const t1 = await value('Temperature');
    expect(t1.json).toMatchObject({ quality: 'good', value: expect.any(Number) });
    // Subscribed: the server reports changes (it changes the value every 500 ms).
    const t2 = await sub.next((m) => m.topic === 's/g/plc/Temperature' && m.json.value !== t1.json.value, 10_000, 'a changed Temperature');
    expect(t2.json.quality).toBe('good');
    expect((await value('ghost')).json).toMatchObject({ value: null, quality: 'bad', reason: expect.stringContaining('BadNodeIdUnknown') });
    expect(server.sessions() - browsing).toBe(1);

    // The server restarts: the device goes down, comes back by itself with exactly one new session, values flow again.
    const restartAt = Date.now();
    const down = sub.next(status('plc', 'down'), 15_000, 'plc down');
    await server.stop();
    const wentDown = await down;
    server = await open62541(port);
    await sub.waitFor((m) => m.at > restartAt && status('plc', 'up')(m), 20_000, 'plc up again');
    const after = await sub.waitFor(
      (m) => m.at > restartAt && m.topic === 's/g/plc/the_answer' && m.json.quality === 'good',
      10_000,
      'the_answer after the restart',
    );
    expect(after.json.value).toBe(42);
    await sub.waitFor(
      (m) => m.at > restartAt && m.topic === 's/g/plc/Temperature' && m.json.quality === 'good' && m.json.reason === undefined,
      10_000,
      'Temperature resubscribed',
    );
    await sub.waitFor(
      (m) => m.at > restartAt && m.topic === 's/g/plc/ghost' && String(m.json.reason).includes('BadNodeIdUnknown'),
      10_000,
      'ghost refused again',
    );
    expect(server.sessions()).toBe(1);
    // The gap in the subscribed point (the server reported nothing while it was away): one bad
    // sample whose reason is why the link was lost (what the status said), and the next sample,
    // from the new subscription, good.
    const since = sub.messages.filter((m) => m.at > restartAt && m.topic === 's/g/plc/Temperature');
    const bad = since.filter((m) => m.json.quality === 'bad');
    expect(bad).toHaveLength(1);
    expect(bad[0]!.json).toMatchObject({ value: null, reason: `link lost: ${String(wentDown.json.reason)}` });
    expect(since[since.indexOf(bad[0]!) + 1]!.json).toMatchObject({ quality: 'good', value: expect.any(Number) });
    // The subscribed point the server refuses gets the same marker. (The polled points missed no
    // poll: the link was back within one interval.)
    expect(sub.messages.filter((m) => m.at > restartAt && m.topic === 's/g/plc/ghost' && String(m.json.reason).startsWith('link lost: '))).toHaveLength(1);
  });

  it('Basic256Sha256 SignAndEncrypt with mutual trust: says which certificate the server must trust, then connects', async () => {
    const dir = tmp();
    const { pem, cert, key } = open62541Certificate(dir);
    const port = await freePort();
    let server = await open62541(port, { cert, key });
    const { b, sub } = await broker();
    const devices = `version: 1
devices:
  - name: secure
    driver: opcua
    poll_interval_ms: 300
    ${LINK}
    connection: { endpoint: "opc.tcp://127.0.0.1:${port}", security_policy: Basic256Sha256, security_mode: SignAndEncrypt }
    points:
      - { name: answer, node_id: "ns=1;s=the.answer" }
      - { name: temperature, node_id: "ns=1;s=Temperature", mode: subscribe, sampling_interval_ms: 100 }
`;
    // The installer has put the server's certificate in the gateway's trust list.
    const tg = makeGateway(gatewayYaml(b), devices, undefined, (d) => {
      mkdirSync(join(d, 'pki/opcua/trusted/certs'), { recursive: true });
      copyFileSync(pem, join(d, 'pki/opcua/trusted/certs/open62541-peer.pem'));
    });
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    // The server does not trust the gateway yet: the reason names the gateway's certificate.
    const refused = await sub.waitFor(status('secure', 'down'), 20_000, 'secure down');
    const own = join(tg.dir, 'pki/opcua/own/certs/client_certificate.pem');
    expect(String(refused.json.reason)).toContain(`does not trust the gateway's certificate: add ${own}`);
    // The installer gives the server the gateway's certificate (DER) and restarts it.
    const ownDer = join(dir, 'gateway.der');
    writeFileSync(ownDer, new X509Certificate(readFileSync(own)).raw);
    await server.stop();
    server = await open62541(port, { cert, key, trust: ownDer });
    await sub.next(status('secure', 'up'), 20_000, 'secure up');
    expect((await sub.waitFor((m) => m.topic === 's/g/secure/answer' && m.json.quality === 'good', 10_000, 'answer')).json.value).toBe(42);
    expect((await sub.waitFor((m) => m.topic === 's/g/secure/temperature' && m.json.quality === 'good', 10_000, 'temperature')).json.value).toEqual(
      expect.any(Number),
    );
    expect(server.output()).toContain('SecurityPolicy#Basic256Sha256');
  });

  it('an untrusted server certificate: the operator does what the advice says, and the advice that follows is for the next cause; the gateway certificate names the gateway', async () => {
    const dir = tmp();
    const { cert, key } = open62541Certificate(dir);
    const port = await freePort();
    // A server that trusts no client yet; the gateway does not trust the server yet either.
    await open62541(port, { cert, key });
    const { b, sub } = await broker();
    const devices = `version: 1
devices:
  - name: secure
    driver: opcua
    poll_interval_ms: 300
    ${LINK}
    connection: { endpoint: "opc.tcp://127.0.0.1:${port}", security_policy: Basic256Sha256, security_mode: SignAndEncrypt }
    points:
      - { name: answer, node_id: "ns=1;s=the.answer" }
`;
    const tg = makeGateway(gatewayYaml(b), devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    const reasonOf = (m: Message) => String(m.json.reason);
    const untrusted = await sub.waitFor((m) => status('secure', 'down')(m) && reasonOf(m).includes('is not trusted'), 20_000, 'untrusted advice');
    const advice = /move (\S+) to (\S+) \(or set trust_unknown_server/.exec(reasonOf(untrusted));
    expect(advice, reasonOf(untrusted)).not.toBeNull();
    // The operator does exactly what it says.
    renameSync(advice![1]!, join(advice![2]!, basename(advice![1]!)));
    const moved = Date.now();
    // The next status says what is wrong now: the server refuses the gateway's certificate.
    const next = await sub.next((m) => m.at > moved && m.topic === 's/g/status/secure', 20_000, 'the status after the move');
    expect(reasonOf(next)).toContain("does not trust the gateway's certificate: add");
    expect(reasonOf(next)).not.toContain('is not trusted');
    // The gateway's own certificate says which gateway it is (gateway g of site s, on this host).
    const own = new X509Certificate(readFileSync(join(tg.dir, 'pki/opcua/own/certs/client_certificate.pem')));
    expect(own.subject).toContain(`CN=edgeferry g@${hostname()}`);
    expect(own.subject).toContain('O=s');
    expect(own.subject).not.toMatch(/Sterfive|Orleans/);
  });
});
