// The EL inference stage end to end: images from the simulated EL camera land in an inbox, the
// gateway classifies them in its worker thread, verdicts arrive on the broker (real mosquitto,
// mutual TLS) and the files leave the inbox; unreadable files go to rejected/; a hot reload swaps a
// good model and refuses a corrupt one while images keep flowing; a gateway killed mid-batch loses
// nothing; the configured operating point of the model is the threshold verdicts use. Both shipped
// models (0.2.0 and 0.3.0) serve, and one is swapped for the other and back while images flow.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { recipe } from '../../scripts/lib/doc-recipes.js';
import { startElCamera, writeCell } from '../../simulators/el-camera/index.js';
import { start as startSim } from '../../simulators/modbus/index.js';
import { startMosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { gatewayYaml, makeGateway } from '../helpers/gateway.js';
import { elWorkdir, MODELS, shippedModel, type ShippedModel } from '../helpers/el-workdir.js';
import { Subscriber } from '../helpers/subscriber.js';

const root = join(import.meta.dirname, '../..');
const cli = join(root, 'dist/src/main.js');
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(folder: ShippedModel = 'el-defect') {
  const broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  const plc = await startSim({ registers: [{ area: 'holding', address: 0, value: 1 }] });
  cleanups.push(() => plc.stop());
  const { work, modelDir, inbox } = elWorkdir('edgeferry-el-', folder);
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const sub = await Subscriber.connect(broker, 's/g/#');
  cleanups.push(() => sub.close());
  const devices = `version: 1\ndevices:\n  - name: plc\n    driver: modbus_tcp\n    poll_interval_ms: 1000\n    connection: { host: 127.0.0.1, port: ${plc.port} }\n    points:\n      - { name: v, address: 0 }\n`;
  const inference = `inference:\n  model_dir: ${modelDir}\n  inbox: ${inbox}\n  id_pattern: '^(?<line>L\\d+)_(?<station>S\\d+)_(?<cell>\\d+)\\.png$'\n  max_batch: 4\n  workers: 2\n`;
  return { broker, sub, work, modelDir, inbox, devices, gatewayYamlText: gatewayYaml(broker) + inference };
}

const verdicts = (sub: Subscriber) => sub.messages.filter((m) => m.topic.startsWith('s/g/el/') && !m.retain);
const waitCount = (sub: Subscriber, n: number, ms = 30_000) => sub.waitFor(() => verdicts(sub).length >= n, ms, `${n} verdicts`);

describe('EL inference stage', () => {
  it.each(MODELS)(
    'classifies images from the inbox, publishes verdicts on the station topic, and moves the files (%s)',
    async (folder) => {
      const s = await setup(folder);
      const shipped = shippedModel(folder).manifest;
      const tg = makeGateway(s.gatewayYamlText, s.devices);
      cleanups.push(() => tg.cleanup());
      // Written while the gateway was not running: picked up by the rescan at start.
      await writeCell(join(s.inbox, 'L1_S7_000001.png'), { defect: 'crack', seed: 1 });
      await tg.gw.start();
      const cam = startElCamera({ inbox: s.inbox, rate: 40, count: 24, stations: ['S1', 'S2'], seed: 3 });
      cleanups.push(() => cam.stop());
      await cam.done;
      await waitCount(s.sub, 25);
      const v = verdicts(s.sub);
      const first = v.find((m) => m.json.image === 'L1_S7_000001.png')!;
      expect(first.topic).toBe('s/g/el/S7');
      expect(first.json).toMatchObject({
        quality: 'good',
        station: 'S7',
        line: 'L1',
        cell: '000001',
        threshold: shipped.threshold,
        model: { name: 'el-defect', version: shipped.version, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      });
      expect(typeof first.json.value).toBe('number');
      expect(['defective', 'ok']).toContain(first.json.verdict);
      expect(first.json.verdict).toBe((first.json.value as number) >= (first.json.threshold as number) ? 'defective' : 'ok');
      expect(first.json.preprocess_ms).toEqual(expect.any(Number));
      // Each image once, the inbox empty, every file in processed/.
      const images = v.map((m) => m.json.image);
      expect(new Set(images).size).toBe(25);
      await tg.gw.inference!.whenIdle();
      expect(readdirSync(s.inbox).filter((f) => f.endsWith('.png'))).toEqual([]);
      expect(readdirSync(join(s.inbox, 'processed')).length).toBe(25);
      const statuses = s.sub.messages.filter((m) => m.topic === 's/g/status/el');
      // Retained status on change only: once when the model went into service, not once per image.
      expect(statuses).toHaveLength(1);
      expect(statuses[0]!.json).toMatchObject({ state: 'serving', model: { name: 'el-defect' }, model_error: null, worker_restarts: 0 });
      expect(await tg.gw.metrics.registry.metrics()).toMatch(/edgeferry_el_images_total\{outcome="classified"\} 25/);
    },
    60_000,
  );

  it('moves an unreadable image to rejected/ with the reason, and goes on', async () => {
    const s = await setup();
    const tg = makeGateway(s.gatewayYamlText, s.devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    writeFileSync(join(s.inbox, 'L1_S1_.tmp'), 'this is not a PNG');
    renameSync(join(s.inbox, 'L1_S1_.tmp'), join(s.inbox, 'L1_S1_000009.png'));
    await writeCell(join(s.inbox, 'L1_S1_000010.png'), { defect: 'none', seed: 10 });
    await waitCount(s.sub, 1);
    await expect
      .poll(async () => /edgeferry_el_images_total\{outcome="rejected"\} 1\b/.test(await tg.gw.metrics.registry.metrics()), { timeout: 10_000 })
      .toBe(true);
    expect(readdirSync(join(s.inbox, 'rejected')).sort()).toEqual(['L1_S1_000009.png', 'L1_S1_000009.png.reason.txt']);
    expect(readFileSync(join(s.inbox, 'rejected', 'L1_S1_000009.png.reason.txt'), 'utf8')).toMatch(/^unreadable image: /);
    expect(verdicts(s.sub).map((m) => m.json.image)).toEqual(['L1_S1_000010.png']);
  }, 60_000);

  it('swaps in a new model dropped in place and refuses a corrupt one, while images keep flowing', async () => {
    const s = await setup();
    const tg = makeGateway(s.gatewayYamlText, s.devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    const oldSha = tg.gw.inference!.modelInfo!.sha256;
    const cam = startElCamera({ inbox: s.inbox, rate: 30, count: 120, seed: 5 });
    cleanups.push(() => cam.stop());
    await waitCount(s.sub, 10);

    // A corrupt model renamed into place: refused, the error on the status topic, old one serves.
    writeFileSync(join(s.modelDir, 'model.onnx.new'), Buffer.from('not an onnx model at all'));
    renameSync(join(s.modelDir, 'model.onnx.new'), join(s.modelDir, 'model.onnx'));
    const refused = await s.sub.waitFor(
      (m) => m.topic === 's/g/status/el' && typeof m.json.model_error === 'string',
      10_000,
      'model error on the status topic',
    );
    expect(refused.json).toMatchObject({ state: 'serving', model: { sha256: oldSha } });
    const afterBad = verdicts(s.sub).length;
    await waitCount(s.sub, afterBad + 5);

    // A good new model (same network, different file: an extra ONNX doc_string field).
    const good = Buffer.concat([readFileSync(join(root, 'models/el-defect/model.onnx')), Buffer.from([0x32, 0x04]), Buffer.from('v2.0')]);
    writeFileSync(join(s.modelDir, 'model.onnx.new'), good);
    renameSync(join(s.modelDir, 'model.onnx.new'), join(s.modelDir, 'model.onnx'));
    const swapped = await s.sub.waitFor(
      (m) => m.topic.startsWith('s/g/el/') && (m.json.model as { sha256?: string })?.sha256 !== oldSha,
      15_000,
      'a verdict from the new model',
    );
    expect((swapped.json.model as { sha256: string }).sha256).toMatch(/^[0-9a-f]{64}$/);
    await s.sub.waitFor((m) => m.topic === 's/g/status/el' && m.json.model_error === null, 5000, 'status cleared');

    await cam.done;
    await waitCount(s.sub, 120);
    await tg.gw.inference!.whenIdle();
    // No image dropped or classified twice across both reloads; verdicts of one model, then the other.
    const v = verdicts(s.sub);
    expect(new Set(v.map((m) => m.json.image)).size).toBe(120);
    expect(v.length).toBe(120);
    const shas = v.map((m) => (m.json.model as { sha256: string }).sha256);
    const switchAt = shas.findIndex((x) => x !== oldSha);
    expect(shas.slice(switchAt).every((x) => x !== oldSha)).toBe(true);
  }, 90_000);

  it("swaps 0.2.0 for 0.3.0 and rolls back by docs/inference.md's recipes as written, while images keep flowing", async () => {
    // Each version's file has its own name, so the new file is copied in first (nothing reads a
    // name no manifest names yet) and one rename of model.json switches the model and its threshold
    // at once; the rollback renames the old manifest back.
    const s = await setup('el-defect');
    const fast = shippedModel('el-defect');
    const lite = shippedModel('el-defect-lite');
    expect(lite.manifest.file).not.toBe(fast.manifest.file);
    const tg = makeGateway(s.gatewayYamlText, s.devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    const cam = startElCamera({ inbox: s.inbox, rate: 30, count: 150, seed: 7 });
    cleanups.push(() => cam.stop());
    await waitCount(s.sub, 10);
    // The doc's folders, this test's: its model_dir, and this checkout's models/ for /opt/edgeferry/models.
    const run = (block: string) => {
      const script = block.replaceAll('/var/lib/edgeferry/el-model', s.modelDir).replaceAll('/opt/edgeferry/models', join(root, 'models'));
      const r = spawnSync('sh', ['-ec', script], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
    };
    const byVersion = (version: string) => (m: { topic: string; json: Record<string, unknown> }) =>
      m.topic.startsWith('s/g/el/') && (m.json.model as { version?: string })?.version === version;

    run(recipe('inference.md', 'sh model-swap'));
    const upgraded = await s.sub.waitFor(byVersion(lite.manifest.version), 20_000, 'a verdict from 0.3.0');
    expect(upgraded.json.threshold).toBe(lite.manifest.threshold);
    const n = verdicts(s.sub).length;
    await waitCount(s.sub, n + 5);

    run(recipe('inference.md', 'sh model-rollback'));
    const from = verdicts(s.sub).length;
    await s.sub.waitFor(() => verdicts(s.sub).slice(from).some(byVersion(fast.manifest.version)), 20_000, 'a verdict from 0.2.0 again');

    await cam.done;
    await waitCount(s.sub, 150);
    await tg.gw.inference!.whenIdle();
    const v = verdicts(s.sub);
    expect(new Set(v.map((m) => m.json.image)).size).toBe(150);
    expect(v.length).toBe(150);
    // One model at a time, each verdict with its own model's threshold: 0.2.0, then 0.3.0, then 0.2.0.
    const runs = v.map((m) => `${(m.json.model as { version: string }).version}@${String(m.json.threshold)}`).filter((x, i, a) => i === 0 || a[i - 1] !== x);
    expect(runs).toEqual([
      `${fast.manifest.version}@${fast.manifest.threshold}`,
      `${lite.manifest.version}@${lite.manifest.threshold}`,
      `${fast.manifest.version}@${fast.manifest.threshold}`,
    ]);
    expect(s.sub.messages.filter((m) => m.topic === 's/g/status/el' && m.json.model_error !== null)).toEqual([]);
  }, 120_000);

  it('applies a new model.json alone (same model file, a new threshold) without a restart', async () => {
    const s = await setup('el-defect');
    const tg = makeGateway(s.gatewayYamlText, s.devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    await writeCell(join(s.inbox, 'L1_S1_000001.png'), { defect: 'crack', seed: 1 });
    await waitCount(s.sub, 1);
    const manifest = JSON.parse(readFileSync(join(s.modelDir, 'model.json'), 'utf8')) as Record<string, unknown>;
    expect(verdicts(s.sub)[0]!.json.threshold).toBe(manifest.threshold);
    writeFileSync(join(s.modelDir, 'model.json.new'), JSON.stringify({ ...manifest, threshold: 0.4242 }));
    renameSync(join(s.modelDir, 'model.json.new'), join(s.modelDir, 'model.json'));
    await s.sub.waitFor((m) => m.topic === 's/g/status/el' && m.json.threshold === 0.4242, 10_000, 'the new threshold on the status topic');
    await writeCell(join(s.inbox, 'L1_S1_000002.png'), { defect: 'crack', seed: 2 });
    await waitCount(s.sub, 2);
    expect(verdicts(s.sub)[1]!.json).toMatchObject({ image: 'L1_S1_000002.png', threshold: 0.4242 });
  }, 60_000);

  it('judges by the configured operating point, and refuses a swapped-in model that lacks it while the old one serves', async () => {
    const s = await setup();
    const manifest = JSON.parse(readFileSync(join(s.modelDir, 'model.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(s.modelDir, 'model.json'), JSON.stringify({ ...manifest, operating_points: { balanced: 0.5, strict: 0.93 } }));
    const tg = makeGateway(s.gatewayYamlText.replace('  max_batch: 4\n', '  max_batch: 4\n  operating_point: strict\n'), s.devices);
    cleanups.push(() => tg.cleanup());
    await tg.gw.start();
    const oldSha = tg.gw.inference!.modelInfo!.sha256;
    for (let i = 0; i < 6; i++) await writeCell(join(s.inbox, `L1_S1_${String(i).padStart(6, '0')}.png`), { defect: i % 2 ? 'none' : 'crack', seed: i });
    await waitCount(s.sub, 6);
    for (const v of verdicts(s.sub)) {
      expect(v.json.threshold).toBe(0.93);
      expect(v.json.verdict).toBe((v.json.value as number) >= 0.93 ? 'defective' : 'ok');
    }
    expect(s.sub.messages.find((m) => m.topic === 's/g/status/el')!.json).toMatchObject({ threshold: 0.93, operating_point: 'strict' });

    // The next model comes without operating points: refused, said on the status topic; the old one goes on.
    writeFileSync(join(s.modelDir, 'model.json'), JSON.stringify(manifest));
    const next = Buffer.concat([readFileSync(join(root, 'models/el-defect/model.onnx')), Buffer.from([0x32, 0x04]), Buffer.from('v2.1')]);
    writeFileSync(join(s.modelDir, 'model.onnx.new'), next);
    renameSync(join(s.modelDir, 'model.onnx.new'), join(s.modelDir, 'model.onnx'));
    const refused = await s.sub.waitFor(
      (m) => m.topic === 's/g/status/el' && typeof m.json.model_error === 'string',
      10_000,
      'model error on the status topic',
    );
    expect(refused.json.model_error).toContain('expected an operating point "strict" (inference.operating_point), got none');
    expect(refused.json).toMatchObject({ state: 'serving', model: { sha256: oldSha }, threshold: 0.93 });
    await writeCell(join(s.inbox, 'L1_S1_000100.png'), { defect: 'crack', seed: 100 });
    const after = await s.sub.waitFor((m) => m.topic.startsWith('s/g/el/') && m.json.image === 'L1_S1_000100.png', 15_000, 'a verdict after the refusal');
    expect(after.json).toMatchObject({ threshold: 0.93, model: { sha256: oldSha } });
  }, 60_000);

  it('loses nothing when the gateway is killed mid-batch: every image gets a verdict after the restart', async () => {
    const s = await setup();
    writeFileSync(join(s.work, 'devices.yaml'), s.devices);
    writeFileSync(join(s.work, 'gateway.yaml'), s.gatewayYamlText.replace('path: buffer.db', `path: ${join(s.work, 'buffer.db')}`));
    const N = 60;
    for (let i = 0; i < N; i++) await writeCell(join(s.inbox, `L1_S1_${String(i).padStart(6, '0')}.png`), { defect: i % 3 ? 'none' : 'crack', seed: i });
    const procs: ChildProcess[] = [];
    cleanups.push(() => procs.forEach((p) => p.exitCode === null && p.kill('SIGKILL')));
    const run = () => {
      const p = spawn(process.execPath, [cli, 'run', '--config', join(s.work, 'gateway.yaml')], { stdio: 'ignore' });
      procs.push(p);
      return p;
    };
    const first = run();
    // Kill it while images are still being classified.
    await waitCount(s.sub, 5);
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    const left = readdirSync(s.inbox).filter((f) => f.endsWith('.png')).length;
    expect(left).toBeGreaterThan(0);
    const second = run();
    await s.sub.waitFor(() => new Set(verdicts(s.sub).map((m) => m.json.image)).size >= N, 60_000, 'a verdict for every image');
    second.kill('SIGTERM');
    await new Promise((r) => second.once('exit', r));
    expect(readdirSync(s.inbox).filter((f) => f.endsWith('.png'))).toEqual([]);
    expect(readdirSync(join(s.inbox, 'processed')).length).toBe(N);
    // At least once. A verdict sent again with the same seq is the publisher's redelivery of its
    // in-flight window; an image classified again (a new seq) happens only for images whose verdict
    // was committed but not yet moved when the process died: at most the batches in flight
    // (2 workers × max_batch 4).
    const seqs = new Map<string, Set<number>>();
    for (const m of verdicts(s.sub)) seqs.set(String(m.json.image), (seqs.get(String(m.json.image)) ?? new Set()).add(Number(m.json.seq)));
    expect([...seqs.values()].filter((x) => x.size > 1).length).toBeLessThanOrEqual(8);
    expect(existsSync(join(s.inbox, 'rejected'))).toBe(true);
  }, 120_000);
});
