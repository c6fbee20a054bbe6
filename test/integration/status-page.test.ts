// The status page as a person sees it, in headless Chromium (Debian's), against a running gateway:
// the gateway, its broker and buffer, each device with its state, round trip and latest values —
// and, on the same open page without reloading, a device going down (with its error) and coming back.
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMosquitto, type Mosquitto } from '../../simulators/mqtt-broker/mosquitto.js';
import { start as startSim, type ModbusSimulator } from '../../simulators/modbus/index.js';
import { makeGateway, type TestGateway } from '../helpers/gateway.js';

const CHROMIUM = '/usr/bin/chromium';
let broker: Mosquitto;
let plc: ModbusSimulator;
let tg: TestGateway;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  broker = await startMosquitto();
  plc = await startSim({
    registers: [
      { area: 'holding', address: 0, type: 'uint16', value: 4242 },
      { area: 'holding', address: 1, type: 'int16', value: -7 },
    ],
  });
  tg = makeGateway(
    `version: 1\nsite: plant-a\ngateway_id: gw-01\ndevices: [devices.yaml]\nmqtt:\n  url: ${broker.url}\n  tls: { ca: ${broker.files.ca}, cert: ${broker.files.clientCert}, key: ${broker.files.clientKey} }\nbuffer: { path: buffer.db }\nhealth: { port: 0 }\n`,
    `version: 1\ndevices:\n  - name: press-1\n    driver: modbus_tcp\n    poll_interval_ms: 200\n    connection: { host: 127.0.0.1, port: ${plc.port}, timeout_ms: 300 }\n    link: { probe_interval_ms: 500, failures_before_down: 1, backoff_min_ms: 100, backoff_max_ms: 300 }\n    points:\n      - { name: strokes, address: 0, type: uint16 }\n      - { name: offset, address: 1, type: int16 }\n`,
  );
  await tg.gw.start();
  // As the machine's probe found: without the background-networking flags Chromium keeps trying
  // to reach Google's hosts, which this closed network refuses. (playwright gives it a fresh, empty profile.)
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await tg?.cleanup();
  await plc?.stop();
  await broker?.stop();
});

const row = () => page.locator('tr[data-device="press-1"]');

describe('status page', () => {
  it('shows the gateway, broker, buffer and each device with its latest values', async () => {
    await page.goto(`http://127.0.0.1:${tg.gw.healthPort}/`);
    await expect.poll(() => page.locator('#title').textContent(), { timeout: 15_000 }).toBe('edgeferry plant-a/gw-01');
    await expect.poll(() => page.locator('#mqtt').innerText(), { timeout: 15_000 }).toBe('connected');
    await expect.poll(() => row().locator('td').nth(1).innerText(), { timeout: 15_000 }).toBe('up');
    await expect.poll(() => row().locator('td.values').innerText(), { timeout: 15_000 }).toBe('strokes = 4242\noffset = -7');
    expect(await page.locator('#overall').innerText()).toBe('ok');
    expect(await page.locator('#buffer-detail').innerText()).toMatch(/of 1024\.0 MiB/);
    expect(await row().locator('td').nth(3).innerText()).toMatch(/^[\d.]+ \/ [\d.]+ ms$/);
  }, 30_000);

  it('shows the device going down with its error, and coming back, on the open page', async () => {
    plc.script({ kind: 'silent' });
    await expect.poll(() => row().locator('td').nth(1).innerText(), { timeout: 20_000 }).toBe('down');
    expect(await row().locator('td.reason').innerText()).toMatch(/no answer|timeout|timed out/i);
    plc.clear();
    await expect.poll(() => row().locator('td').nth(1).innerText(), { timeout: 20_000 }).toBe('up');
    expect(await row().locator('td.reason').innerText()).toBe('');
  }, 45_000);
});
