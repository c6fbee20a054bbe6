// The Node-RED flow in docs/integration.md, as a user takes it (issue 34): copied from the doc,
// imported into a real Node-RED 4.1 (installed from npm into .cache/nodered at the first run, as
// bench:nodered does) the way the editor's Import → Clipboard does it (the nodes go onto a tab),
// deployed through Node-RED's admin API, fed by the gateway through mosquitto — and then Node-RED
// is stopped for 15 s while the gateway keeps publishing. What the doc promises, by seq: every sample
// published from the stop on arrives after the restart, and nothing is missing but the few that were
// inside the flow at the instant of the stop (Node-RED acknowledges on arrival; the doc says so).
// Only the broker's address, the certificate files and the site/gateway names are put in.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../simulators/free-port.js';
import { stopChild } from '../../simulators/stop-child.js';
import { recipe } from '../../scripts/lib/doc-recipes.js';
import { consumerPlant, missing } from '../helpers/consumer-plant.js';

const root = join(import.meta.dirname, '../..');
const nrHome = join(root, '.cache/nodered');
const NODE_RED = '4.1';
const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** node-red@4.1 in .cache/nodered (not a dependency of the project), once. */
function installNodeRed(): string {
  const red = join(nrHome, 'node_modules/node-red/red.js');
  if (existsSync(red)) return red;
  mkdirSync(nrHome, { recursive: true });
  if (!existsSync(join(nrHome, 'package.json'))) writeFileSync(join(nrHome, 'package.json'), '{"name":"edgeferry-nodered","private":true}\n');
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', `node-red@${NODE_RED}`], {
    cwd: nrHome,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return red;
}

interface FlowNode {
  id: string;
  type: string;
  z?: string;
  wires?: string[][];
  [k: string]: unknown;
}

describe('docs/integration.md: the Node-RED flow', () => {
  it(
    'imports and deploys as written into Node-RED 4.1, and a 15 s Node-RED restart under load loses nothing published from the stop on',
    { timeout: 300_000 },
    async () => {
      const red = installNodeRed();
      const { broker, dir, gateway } = await consumerPlant('docs-nodered', cleanups);

      // The doc's block, with this test's broker, files and names.
      const flow = JSON.parse(recipe('integration.md', 'json node-red')) as FlowNode[];
      const node = (id: string) => flow.find((n) => n.id === id)!;
      Object.assign(node('ef-broker'), { broker: '127.0.0.1', port: new URL(broker.url).port });
      Object.assign(node('ef-tls'), { ca: broker.files.ca, cert: broker.files.clientCert, key: broker.files.clientKey });
      node('ef-in').topic = String(node('ef-in').topic).replace('plant-a/gw-01', 's/g');
      // Import → Clipboard puts the flow's nodes on the open tab; config nodes stay global.
      const tab = 'docs-tab';
      for (const n of flow) if (!['mqtt-broker', 'tls-config'].includes(n.type)) n.z = tab;
      // The harness: what the flow passes on is also written to a file, one JSON line per sample.
      const out = join(dir, 'samples.jsonl');
      node('ef-dedupe').wires![0]!.push('test-file');
      const deployed: FlowNode[] = [
        { id: tab, type: 'tab', label: 'Flow 1' },
        ...flow,
        {
          id: 'test-file',
          type: 'file',
          z: tab,
          filename: out,
          filenameType: 'str',
          appendNewline: true,
          createDir: false,
          overwriteFile: 'false',
          encoding: 'none',
          wires: [[]],
        },
      ];

      const userDir = join(dir, 'nr');
      mkdirSync(userDir);
      symlinkSync(join(nrHome, 'node_modules'), join(userDir, 'node_modules'));
      const uiPort = await freePort();
      writeFileSync(
        join(userDir, 'settings.js'),
        `module.exports = { uiHost: '127.0.0.1', uiPort: ${uiPort}, flowFile: 'flows.json', credentialSecret: false, httpNodeRoot: false, logging: { console: { level: 'warn' } } };\n`,
      );
      let nr: ChildProcess | undefined;
      let nrLog = '';
      const startNodeRed = async () => {
        const p = spawn(process.execPath, [red, '--userDir', userDir, '--settings', join(userDir, 'settings.js')], {
          cwd: userDir,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        p.stdout.on('data', (d: Buffer) => (nrLog += d.toString()));
        p.stderr.on('data', (d: Buffer) => (nrLog += d.toString()));
        nr = p;
        // Up once its admin API answers.
        for (;;) {
          if (p.exitCode !== null) throw new Error(`Node-RED exited: ${nrLog.slice(-2000)}`);
          const ok = await fetch(`http://127.0.0.1:${uiPort}/settings`).then(
            (r) => r.ok,
            () => false,
          );
          if (ok) return;
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      cleanups.push(() => stopChild(nr));
      await startNodeRed();
      // Deploy, as the editor's Deploy button does.
      const res = await fetch(`http://127.0.0.1:${uiPort}/flows`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
        body: JSON.stringify(deployed),
      });
      expect(res.status, `${await res.clone().text()}\n${nrLog}`).toBeLessThan(300);
      const running = (await (await fetch(`http://127.0.0.1:${uiPort}/flows`)).json()) as FlowNode[];
      expect(running.map((n) => n.id).sort()).toEqual(deployed.map((n) => n.id).sort());

      const tg = gateway();
      await tg.gw.start();
      const seqs = () =>
        existsSync(out)
          ? readFileSync(out, 'utf8')
              .split('\n')
              .filter(Boolean)
              .map((l) => (JSON.parse(l) as { seq: number }).seq)
          : [];
      const until = async (what: string, ok: () => boolean, ms: number) => {
        const end = Date.now() + ms;
        while (!ok()) {
          if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms; Node-RED said: ${nrLog.slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      await until('samples through the deployed flow', () => seqs().length >= 50, 60_000);

      // Node-RED restarted (an upgrade, a crash): 15 s away while the gateway publishes.
      const storedBeforeStop = Math.max(...seqs());
      await stopChild(nr);
      const publishedAtExit = tg.gw.bufferStats().lastSeq; // anything later was published with Node-RED gone
      const lastBefore = Math.max(...seqs());
      await new Promise((r) => setTimeout(r, 15_000));
      const publishedMeanwhile = tg.gw.bufferStats().lastSeq - lastBefore;
      await startNodeRed();
      const target = tg.gw.bufferStats().lastSeq + 50;
      await until('samples after the restart', () => Math.max(...seqs()) >= target, 60_000);

      const { lo, hi, count, missing: holes } = missing(seqs());
      console.log(
        `Node-RED ${NODE_RED} with the doc's flow: ${count} samples (seq ${lo}..${hi}), ${publishedMeanwhile} published during the 15 s restart, ` +
          `${holes.length} missing ${JSON.stringify(holes.slice(0, 20))} (in the flow at the stop: seq ${storedBeforeStop + 1}..${publishedAtExit})`,
      );
      expect(publishedMeanwhile).toBeGreaterThan(100);
      // Published while Node-RED was away: all of it (without autoUnsubscribe:false, all of it is lost).
      expect(holes.filter((q) => q > publishedAtExit)).toEqual([]);
      // Before the stop: only what was inside the flow when it stopped.
      expect(holes.filter((q) => q <= storedBeforeStop)).toEqual([]);
    },
  );
});
