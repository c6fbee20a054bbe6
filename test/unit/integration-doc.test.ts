// docs/integration.md is what plant systems are built from: its topic table must be the schema's
// defaults, its JSON examples must parse, and its Node-RED and Telegraf examples must be
// configurations that lose nothing (persistent session, QoS 1, dedupe by seq) on our topics. The
// Node-RED function node is run on a stream with duplicates.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const doc = readFileSync(join(root, 'docs/integration.md'), 'utf8');
const blocks = (info: string) => [...doc.matchAll(/```([^\n]*)\n([\s\S]*?)```/g)].filter((m) => m[1] === info).map((m) => m[2]!);
const schema = JSON.parse(readFileSync(join(root, 'config/schema/gateway.schema.json'), 'utf8')) as {
  properties: { mqtt: { properties: Record<string, { default?: string }> }; inference: { properties: Record<string, { default?: string }> } };
};

describe('docs/integration.md', () => {
  it('lists every topic under its default template', () => {
    const mqtt = schema.properties.mqtt.properties;
    const inf = schema.properties.inference.properties;
    const defaults = [
      mqtt.topic_template,
      mqtt.poll_topic_template,
      mqtt.status_topic,
      mqtt.device_status_topic,
      mqtt.events_topic,
      inf.topic_template,
      inf.status_topic,
    ].map((p) => p!.default!);
    expect(defaults.every((d) => typeof d === 'string')).toBe(true);
    const table = doc.slice(0, doc.indexOf('## To lose nothing'));
    for (const d of defaults) expect(table, d).toContain(`| \`${d}\` |`);
  });

  it('has JSON examples that parse, one object per line', () => {
    const lines = blocks('json').flatMap((b) => b.trim().split('\n'));
    expect(lines.length).toBeGreaterThanOrEqual(8);
    for (const l of lines) expect(() => JSON.parse(l), l).not.toThrow();
  });

  it('gives a Node-RED flow with a persistent session, QoS 1 on the data topics, and a dedupe that drops repeats', () => {
    const [flowText] = blocks('json node-red');
    const flow = JSON.parse(flowText!) as Record<string, unknown>[];
    const byType = (t: string) => flow.filter((n) => n.type === t);
    const [broker] = byType('mqtt-broker');
    expect(broker).toMatchObject({ cleansession: false, usetls: true });
    expect(String(broker!.clientid)).not.toBe('');
    const [tls] = byType('tls-config');
    expect(tls).toMatchObject({ verifyservercert: true });
    const [input] = byType('mqtt in');
    expect(input).toMatchObject({ qos: '1', datatype: 'json', broker: broker!.id });
    // The subscription covers the default data topic of site plant-a, gateway gw-01.
    const data = schema.properties.mqtt.properties
      .topic_template!.default!.replace('{site}', 'plant-a')
      .replace('{gateway}', 'gw-01')
      .replace('{device}', '+')
      .replace('{point}', '+');
    expect(input!.topic).toBe(data);
    const [fn] = byType('function');
    expect((input!.wires as string[][])[0]).toEqual([fn!.id]);
    const store = new Map<string, unknown>();
    const context = { get: (k: string) => store.get(k), set: (k: string, v: unknown) => void store.set(k, v) };

    const run = new Function('msg', 'context', fn!.func as string) as (msg: unknown, ctx: typeof context) => { payload: { seq: number } } | null;
    const passed = [1, 2, 2, 3, 1, 5, 4, 5]
      .map((seq) => run({ payload: { seq, value: seq } }, context))
      .filter((m) => m !== null)
      .map((m) => m.payload.seq);
    expect(passed).toEqual([1, 2, 3, 5, 4]);
    expect(run({ payload: { state: 'up' } }, context)).toBeNull();
  });

  it('gives a Telegraf mqtt_consumer with a persistent session, QoS 1, the sample time and seq', () => {
    const [tomlText] = blocks('toml telegraf');
    const conf = parseToml(tomlText!) as { inputs: { mqtt_consumer: Record<string, unknown>[] } };
    const [c] = conf.inputs.mqtt_consumer;
    expect(c).toMatchObject({ qos: 1, persistent_session: true, data_format: 'json_v2', topics: ['plant-a/gw-01/+/+'] });
    expect(String(c!.client_id)).not.toBe('');
    expect(String(c!.servers)).toMatch(/^ssl:\/\//);
    const [j] = c!.json_v2 as { timestamp_path: string; field: { path: string }[] }[];
    expect(j!.timestamp_path).toBe('ts');
    expect(j!.field.map((f) => f.path)).toEqual(['value', 'seq']);
  });
});
