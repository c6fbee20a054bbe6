export const TOPIC_PLACEHOLDERS = ['site', 'gateway', 'device', 'point'] as const;
/** Placeholders of the EL inference topic template. */
export const EL_TOPIC_PLACEHOLDERS = ['site', 'gateway', 'station'] as const;
export type TopicVars = Partial<Record<(typeof TOPIC_PLACEHOLDERS)[number] | 'station', string>>;

/** Placeholders in `template` that are not known, e.g. ["sit"] for "{sit}/x". */
export function unknownPlaceholders(template: string, known: readonly string[] = TOPIC_PLACEHOLDERS): string[] {
  return [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!).filter((n) => !known.includes(n));
}

export function renderTopic(template: string, vars: TopicVars): string {
  return template.replace(/\{(site|gateway|device|point|station)\}/g, (_, k: keyof TopicVars) => vars[k] ?? '');
}
