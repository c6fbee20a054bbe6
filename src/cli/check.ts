// edgeferry check FILE...: gateway files and device maps checked without touching any device.
import { parseArgs } from 'node:util';
import { DRIVERS } from '../../drivers/registry.js';
import { ConfigLoader } from '../config/load.js';
import { formatProblem } from '../config/yaml-file.js';
import { EXIT, type CliIo } from './io.js';

export function cmdCheck(args: string[], io: CliIo): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (!positionals.length) {
    io.err('edgeferry check: expected one or more files, got none');
    return EXIT.USAGE;
  }
  const { problems, warnings } = new ConfigLoader(DRIVERS, io.cwd).check(positionals);
  for (const p of [...problems, ...warnings]) io.out(formatProblem(p));
  if (problems.length) {
    io.err(`${problems.length} problem${problems.length === 1 ? '' : 's'} found`);
    return EXIT.CONFIG_INVALID;
  }
  io.err(`ok: ${positionals.join(', ')}`);
  return EXIT.OK;
}
