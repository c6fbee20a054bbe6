export const TOPIC_PLACEHOLDERS = ['site', 'gateway', 'device', 'point'] as const;
/** Placeholders of the EL inference topic template. */
export const EL_TOPIC_PLACEHOLDERS = ['site', 'gateway', 'station'] as const;
export type TopicVars = Partial<Record<(typeof TOPIC_PLACEHOLDERS)[number] | 'station', string>>;

/** Placeholders in `template` that are not known, e.g. ["sit"] for "{sit}/x". */
export function unknownPlaceholders(template: string, known: readonly string[] = TOPIC_PLACEHOLDERS): string[] {
  return [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).filter((n) => !known.includes(n));
}

/**
 * The topic of `template` for these names. `dot` (mqtt.topic_dot) is what a '.' in a name becomes:
 * NATS 2.9 refuses a '.' in a topic and RabbitMQ makes it a level separator (docs/brokers.md), so
 * by default names reach the broker with '_' instead. Only the names: the template's own text is
 * the user's, as written.
 */
export function renderTopic(template: string, vars: TopicVars, dot = '.'): string {
  return template.replace(/\{(site|gateway|device|point|station)\}/g, (_, k: keyof TopicVars) => topicLevel(vars[k] ?? '', dot));
}

/** A name as it appears in a topic (mqtt.topic_dot). */
export function topicLevel(name: string, dot: string): string {
  return dot === '.' ? name : name.replaceAll('.', dot);
}

/** EL verdict topic when the inference section gives none. */
export const DEFAULT_EL_TOPIC = '{site}/{gateway}/el/{station}';

export interface DataTopicTemplates {
  /** One point's value (mqtt.topic_template). */
  point: string;
  /** One whole poll (mqtt.poll_topic_template). */
  poll: string;
  /** EL verdicts (inference.topic_template); the row's `point` is the station. */
  el?: string;
}

/**
 * Topics of buffered messages, by the kind stored with each row (KIND_CODE: 0 point, 1 poll, 2 EL
 * verdict). Rendered once per device/point and kept: the pump asks for every message.
 */
export class DataTopics {
  /** kind → device → point → topic (nested: no key string made per message). */
  private readonly cache: Map<string, Map<string, string>>[] = [new Map(), new Map(), new Map()];

  constructor(
    private readonly templates: DataTopicTemplates,
    private readonly id: { site: string; gateway: string },
    /** mqtt.topic_dot */
    private readonly dot = '.',
  ) {}

  of(kind: number, device: string, point: string): string {
    const byDevice = this.cache[kind] ?? this.cache[0]!;
    let byPoint = byDevice.get(device);
    if (!byPoint) byDevice.set(device, (byPoint = new Map()));
    let t = byPoint.get(point);
    if (t === undefined) {
      if (kind === 2) t = renderTopic(this.templates.el ?? DEFAULT_EL_TOPIC, { ...this.id, station: point }, this.dot);
      else if (kind === 1) t = renderTopic(this.templates.poll, { ...this.id, device }, this.dot);
      else t = renderTopic(this.templates.point, { ...this.id, device, point }, this.dot);
      byPoint.set(point, t);
    }
    return t;
  }
}
