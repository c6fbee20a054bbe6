// Command-line options of the project's scripts, simulators and benchmarks (the gateway's own
// commands have theirs in src/cli/): --help or -h prints the usage and exits 0; an unknown or
// malformed option prints what was wrong and the usage, and exits 2 — never a stack trace.
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function usageOf(name: string, about: string, options: Options): string {
  const opts = Object.entries(options).map(
    ([k, o]) => `[--${k}${o.type === 'string' ? ` ${o.default !== undefined ? String(o.default) : k.toUpperCase()}` : ''}]`,
  );
  return `usage: ${name} ${opts.join(' ')}\n${about}`;
}

export function scriptArgs<const O extends Options>(name: string, about: string, options: O, argv = process.argv.slice(2)) {
  const usage = usageOf(name, about, options);
  const config = { args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } } } as const;
  let parsed: ReturnType<typeof parseArgs<{ args: string[]; options: O & { help: { type: 'boolean'; short: 'h' } } }>>;
  try {
    parsed = parseArgs(config as { args: string[]; options: O & { help: { type: 'boolean'; short: 'h' } } });
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n${usage}\n`);
    process.exit(2);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return parsed.values;
}
