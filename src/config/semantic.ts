// Checks that span fields or files, which a schema cannot express.
import { accessSync, constants, existsSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { EL_TOPIC_PLACEHOLDERS, renderTopic, unknownPlaceholders } from '../publish/topics.js';
import { readModel } from '../inference/model.js';
import type { DriverSpec } from '../core/driver.js';
import { OUTPUT_KINDS } from '../outputs/registry.js';
import type { LoadedDevice } from './loaded.js';
import type { GatewayFileConfig } from './schema.js';
import type { ConfigProblem, YamlFile } from './yaml-file.js';

export function checkGateway(file: YamlFile, g: GatewayFileConfig, baseDir: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const mqtt = g.mqtt;
  if (typeof mqtt !== 'object' || mqtt === null) return out;
  if (typeof mqtt.url === 'string' && mqtt.url.startsWith('mqtt://') && !mqtt.allow_plaintext) {
    out.push(file.problem(['mqtt', 'url'], `expected an mqtts:// URL (TLS), got "${mqtt.url}"; set allow_plaintext: true to send unencrypted on purpose`));
  }
  if (typeof mqtt.url === 'string' && /^mqtts?:\/\/[^/]*@/.test(mqtt.url)) {
    out.push(
      file.problem(
        ['mqtt', 'url'],
        'expected a URL without user or password (they would end up in logs), got credentials in the URL; use username and password_file',
      ),
    );
  }
  for (const key of ['topic_template', 'poll_topic_template', 'status_topic', 'device_status_topic', 'events_topic'] as const) {
    const t = mqtt[key];
    if (typeof t !== 'string') continue;
    const bad = unknownPlaceholders(t);
    if (bad.length) out.push(file.problem(['mqtt', key], `expected placeholders from {site} {gateway} {device} {point}, got {${bad[0]}}`));
    if (/[+#]/.test(t)) out.push(file.problem(['mqtt', key], `expected a topic without the wildcards + or #, got "${t}"`));
  }
  if (typeof mqtt.topic_template === 'string' && !/\{point\}/.test(mqtt.topic_template)) {
    out.push(file.problem(['mqtt', 'topic_template'], `expected {point} in the data topic (each point needs its own topic), got "${mqtt.topic_template}"`));
  }
  if (mqtt.payload === 'poll' && typeof mqtt.poll_topic_template === 'string') {
    const t = mqtt.poll_topic_template;
    if (!/\{device\}/.test(t) || /\{point\}/.test(t)) {
      out.push(
        file.problem(
          ['mqtt', 'poll_topic_template'],
          `expected {device} and no {point} in the poll topic (one message carries all points of a device), got "${t}"`,
        ),
      );
    }
  }
  if (typeof mqtt.device_status_topic === 'string' && !/\{device\}/.test(mqtt.device_status_topic)) {
    out.push(file.problem(['mqtt', 'device_status_topic'], `expected {device} in the device status topic, got "${mqtt.device_status_topic}"`));
  }
  const outputs = (g.outputs ?? {}) as Record<string, unknown>;
  for (const kind of OUTPUT_KINDS) {
    const c = outputs[kind.key];
    if (c === undefined || typeof c !== 'object' || !kind.enabled(c)) continue;
    for (const p of kind.check?.(c) ?? []) out.push(file.problem(['outputs', kind.key, ...p.path], p.message));
  }
  const inf = g.inference;
  if (inf && typeof inf === 'object' && inf.enabled !== false) {
    for (const key of ['topic_template', 'status_topic'] as const) {
      const t = inf[key];
      if (typeof t !== 'string') continue;
      const bad = unknownPlaceholders(t, EL_TOPIC_PLACEHOLDERS);
      if (bad.length) out.push(file.problem(['inference', key], `expected placeholders from {site} {gateway} {station}, got {${bad[0]}}`));
      if (/[+#]/.test(t)) out.push(file.problem(['inference', key], `expected a topic without the wildcards + or #, got "${t}"`));
    }
    if (typeof inf.id_pattern === 'string') {
      try {
        new RegExp(inf.id_pattern);
      } catch (err) {
        out.push(file.problem(['inference', 'id_pattern'], `expected a regular expression, got one that does not compile: ${(err as Error).message}`));
      }
    }
    if (typeof inf.model_dir === 'string') {
      const dir = isAbsolute(inf.model_dir) ? inf.model_dir : resolve(baseDir, inf.model_dir);
      if (!existsSync(join(dir, 'model.json'))) {
        out.push(
          file.problem(['inference', 'model_dir'], `expected a folder with model.json and the model it names, got "${inf.model_dir}", which has no model.json`),
        );
      } else {
        try {
          const { manifest } = readModel(dir);
          const point = inf.operating_point;
          const has = Object.keys(manifest.operating_points ?? {});
          if (typeof point === 'string' && !has.includes(point)) {
            const got = has.length ? `a model whose operating points are ${has.map((n) => `"${n}"`).join(', ')}` : 'a model with only its default threshold';
            out.push(
              file.problem(['inference', 'operating_point'], `expected an operating point of the model in "${inf.model_dir}", got "${point}" and ${got}`),
            );
          }
        } catch (err) {
          // Paths as the user wrote them, not as this machine resolved them.
          const why = (err as Error).message.split(dir).join(inf.model_dir);
          out.push(file.problem(['inference', 'model_dir'], `expected a folder with model.json and the model it names, got a problem: ${why}`));
        }
      }
    }
  }
  out.push(...checkCommands(file, mqtt));
  if (mqtt.format === 'sparkplug' && !mqtt.sparkplug)
    out.push(file.problem(['mqtt', 'format'], 'expected a sparkplug section (group_id at least) with format: sparkplug, got none'));
  const tls = mqtt.tls ?? {};
  if (tls.cert && !tls.key) out.push(file.problem(['mqtt', 'tls'], 'expected key together with cert (mutual TLS needs both), got only cert'));
  if (tls.key && !tls.cert) out.push(file.problem(['mqtt', 'tls'], 'expected cert together with key (mutual TLS needs both), got only key'));
  const files: [string[], string | undefined][] = [
    [['mqtt', 'tls', 'ca'], tls.ca],
    [['mqtt', 'tls', 'cert'], tls.cert],
    [['mqtt', 'tls', 'key'], tls.key],
    [['mqtt', 'password_file'], mqtt.password_file],
    [['mqtt', 'commands', 'token_file'], mqtt.commands?.token_file],
  ];
  for (const [path, f] of files) {
    if (typeof f !== 'string') continue;
    try {
      accessSync(resolve(baseDir, f), constants.R_OK);
    } catch (err) {
      out.push(
        file.problem(
          path,
          `expected a readable file (relative paths start at the gateway file's folder), got ${(err as NodeJS.ErrnoException).code ?? 'an error'} for "${f}"`,
        ),
      );
    }
  }
  return out;
}

/** The command topics: {device} and {point} each a whole level of the command topic, known placeholders, no wildcards. */
function checkCommands(file: YamlFile, mqtt: GatewayFileConfig['mqtt']): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const c = mqtt.commands;
  if (typeof c !== 'object' || c === null) return out;
  for (const key of ['topic_template', 'result_topic_template'] as const) {
    const t = c[key];
    if (typeof t !== 'string') continue;
    const bad = unknownPlaceholders(t);
    if (bad.length) out.push(file.problem(['mqtt', 'commands', key], `expected placeholders from {site} {gateway} {device} {point}, got {${bad[0]}}`));
    if (/[+#]/.test(t)) out.push(file.problem(['mqtt', 'commands', key], `expected a topic without the wildcards + or #, got "${t}"`));
  }
  const t = c.topic_template;
  if (typeof t === 'string') {
    const levels = t.split('/');
    if (!levels.includes('{device}') || !levels.includes('{point}')) {
      out.push(file.problem(['mqtt', 'commands', 'topic_template'], `expected {device} and {point} each as a whole topic level, got "${t}"`));
    }
  }
  return out;
}

/** Device names are unique across every device map of a gateway. */
export function checkDeviceNames(devices: readonly Pick<LoadedDevice, 'name' | 'source'>[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seen = new Map<string, Pick<LoadedDevice, 'name' | 'source'>>();
  for (const d of devices) {
    const first = seen.get(d.name);
    if (!first) {
      seen.set(d.name, d);
      continue;
    }
    const where = first.source.file.problem(['devices', first.source.index, 'name'], '');
    out.push(
      d.source.file.problem(
        ['devices', d.source.index, 'name'],
        `expected a device name not used by another device, got "${d.name}" (also at ${where.file}:${where.line}:${where.col})`,
      ),
    );
  }
  return out;
}

/** Two things publishing to one topic would make consumers misread data; catch it before start. */
export function checkTopics(g: GatewayFileConfig, devices: LoadedDevice[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const vars = { site: g.site, gateway: g.gateway_id };
  const dot = g.mqtt.topic_dot;
  const owners = new Map<string, string>();
  owners.set(renderTopic(g.mqtt.status_topic, vars, dot), 'the gateway status topic');
  owners.set(renderTopic(g.mqtt.events_topic, vars, dot), 'the gateway events topic');
  // With mqtt.topic_dot '_', "a.b" and "a_b" are one topic: the second is refused, never merged.
  const shownAs = (names: string, other: string) =>
    dot !== '.' && /\./.test(names + other) ? ` (mqtt.topic_dot '${dot}': a '.' in a name becomes '${dot}')` : '';
  const claim = (topic: string, owner: string, d: LoadedDevice, path: (string | number)[], names: string, what = 'a topic') => {
    const other = owners.get(topic);
    if (!other) return void owners.set(topic, owner);
    out.push(
      d.source.file.problem(
        ['devices', d.source.index, ...path],
        `expected ${what} of its own, got "${topic}", which is also ${other}${shownAs(names, other)}`,
      ),
    );
  };
  for (const d of devices)
    claim(
      renderTopic(g.mqtt.device_status_topic, { ...vars, device: d.name }, dot),
      `the status topic of device "${d.name}"`,
      d,
      ['name'],
      d.name,
      'a status topic',
    );
  for (const d of devices) {
    if (g.mqtt.payload === 'poll') {
      claim(renderTopic(g.mqtt.poll_topic_template, { ...vars, device: d.name }, dot), `the poll topic of device "${d.name}"`, d, ['name'], d.name);
      continue;
    }
    d.points.forEach((p, i) =>
      claim(
        renderTopic(g.mqtt.topic_template, { ...vars, device: d.name, point: p.name }, dot),
        `point "${p.name}" of device "${d.name}"`,
        d,
        ['points', i, 'name'],
        d.name + p.name,
      ),
    );
  }
  return out;
}

/**
 * check's warnings about topics some brokers do not carry (docs/brokers.md): with mqtt.topic_dot
 * '.', a name with a '.' (NATS 2.9 drops the connection, RabbitMQ splits the level), and a '.' or
 * a space in the topic templates themselves (NATS refuses a space in any version).
 */
export function topicWarnings(file: YamlFile, g: GatewayFileConfig, devices: LoadedDevice[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const m = g.mqtt;
  for (const key of ['topic_template', 'poll_topic_template', 'status_topic', 'device_status_topic', 'events_topic'] as const) {
    const t = m[key].replace(/\{[^}]*\}/g, '');
    if (/[. ]/.test(t))
      out.push(
        file.problem(
          ['mqtt', key],
          `warning: "${m[key]}" has a ${t.includes(' ') ? 'space' : "'.'"} of its own: NATS drops the connection on ${t.includes(' ') ? 'a space' : "a '.' (2.9)"}, RabbitMQ makes a '.' a level separator (docs/brokers.md)`,
        ),
      );
  }
  if (m.topic_dot !== '.') return out;
  const dotted = [g.site, g.gateway_id, ...devices.flatMap((d) => [d.name, ...(m.payload === 'poll' ? [] : d.points.map((p) => p.name))])].filter((n) =>
    n.includes('.'),
  );
  if (dotted.length)
    out.push(
      file.problem(
        ['mqtt', 'topic_dot'],
        `warning: topics keep the '.' of ${dotted.length} name${dotted.length === 1 ? '' : 's'} (e.g. "${dotted[0]}"): NATS 2.9 drops the connection on them and RabbitMQ splits the level; fine on mosquitto, EMQX, HiveMQ, VerneMQ and NATS 2.10+ (docs/brokers.md)`,
      ),
    );
  return out;
}

/**
 * Devices that share an endpoint share one link, which is made from the first device's settings:
 * a second device that says otherwise would be silently ignored, so it is an error instead.
 */
export function checkSharedLinks(devices: LoadedDevice[], drivers: readonly DriverSpec[]): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const first = new Map<string, LoadedDevice>();
  for (const d of devices) {
    const spec = drivers.find((x) => x.type === d.driver);
    if (!spec) continue;
    const key = spec.linkKey(d);
    const owner = first.get(key);
    if (!owner) {
      first.set(key, d);
      continue;
    }
    const at = (path: (string | number)[]) => d.source.file.problem(['devices', d.source.index, ...(d.source.prefix ?? []), ...path], '');
    for (const k of Object.keys(d.link) as (keyof typeof d.link)[]) {
      if (d.link[k] !== owner.link[k]) {
        const p = at(['link', k]);
        out.push({ ...p, message: `expected ${owner.link[k]} like device "${owner.name}", which shares ${key} (one link, one setting), got ${d.link[k]}` });
      }
    }
    for (const k of spec.sharedConnectionKeys ?? []) {
      const mine = (d.connection as Record<string, unknown>)[k];
      const theirs = (owner.connection as Record<string, unknown>)[k];
      if (mine !== theirs) {
        const p = at(['connection', k]);
        out.push({
          ...p,
          message: `expected ${JSON.stringify(theirs)} like device "${owner.name}", which shares ${key} (one link, one setting), got ${JSON.stringify(mine)}`,
        });
      }
    }
  }
  return out;
}
