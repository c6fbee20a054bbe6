export const TOPIC_PLACEHOLDERS = ['site', 'gateway', 'device', 'point'] as const;
export type TopicVars = Partial<Record<(typeof TOPIC_PLACEHOLDERS)[number], string>>;

/** Placeholders in `template` that are not known, e.g. ["sit"] for "{sit}/x". */
export function unknownPlaceholders(template: string): string[] {
  return [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).filter((n) => !(TOPIC_PLACEHOLDERS as readonly string[]).includes(n));
}

export function renderTopic(template: string, vars: TopicVars): string {
  return template.replace(/\{(site|gateway|device|point)\}/g, (_, k: keyof TopicVars) => vars[k] ?? '');
}
