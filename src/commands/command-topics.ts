// Command and result topics from mqtt.commands' templates: the subscription filter ({device} and
// {point} as single-level wildcards), the device and point named by an incoming topic, and where
// the result goes.
import { renderTopic } from '../publish/topics.js';

export class CommandTopics {
  /** The filter subscribed to, e.g. s/g/+/+/set. */
  readonly filter: string;
  private readonly levels: string[];

  constructor(
    template: string,
    private readonly resultTemplate: string,
    private readonly id: { site: string; gateway: string },
    /** mqtt.topic_dot: a device or point level is the name with '.' shown as this (WriteGate.resolve maps it back). */
    private readonly dot = '.',
  ) {
    this.levels = renderTopic(template.replace(/\{(device|point)\}/g, '\0$1\0'), { ...id }, dot).split('/');
    this.filter = this.levels.map((l) => (l === '\0device\0' || l === '\0point\0' ? '+' : l)).join('/');
  }

  /** The device and point levels of a command topic (names as topics show them), or undefined if it is not one. */
  parse(topic: string): { device: string; point: string } | undefined {
    const parts = topic.split('/');
    if (parts.length !== this.levels.length) return undefined;
    let device: string | undefined;
    let point: string | undefined;
    for (let i = 0; i < parts.length; i++) {
      const l = this.levels[i]!;
      if (l === '\0device\0') device = parts[i];
      else if (l === '\0point\0') point = parts[i];
      else if (l !== parts[i]) return undefined;
    }
    return device && point ? { device, point } : undefined;
  }

  result(device: string, point: string): string {
    return renderTopic(this.resultTemplate, { ...this.id, device, point }, this.dot);
  }
}
