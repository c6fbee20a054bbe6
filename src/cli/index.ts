// The command line: each command is a function of (argv, io) in its own file here; this one
// dispatches and prints the usage. Only src/main.ts touches the process.
import { runBrowse } from './browse.js';
import { runBufferCli } from './buffer.js';
import { cmdCheck } from './check.js';
import { EXIT, type CliIo } from './io.js';
import { cmdRead } from './read.js';
import { cmdRun } from './run.js';
import { runSubscribe } from './sub.js';

/** Each command's usage line(s): `edgeferry CMD --help` prints its entry, `edgeferry --help` all of them. */
const USAGE: Record<string, [string, string]> = {
  run: ['edgeferry run --config FILE', 'run the gateway (checks the config first; refuses to start on errors)'],
  check: ['edgeferry check FILE...', 'check gateway files and device maps without touching devices'],
  read: [
    'edgeferry read --config GATEWAY.yaml|DEVICES.yaml [--device NAME]... [--count N] [--json]',
    'read the real devices of the maps once (or N times) and print each point: commissioning, nothing buffered or published',
  ],
  demo: ['edgeferry demo [--seconds N] [--config FILE] [--model DIR]', 'simulated plant + embedded TLS broker + gateway on config/demo.yaml'],
  sub: [
    'edgeferry sub --url URL --ca FILE [--cert FILE --key FILE] [--topic T] [--count N] [--sparkplug]',
    'print messages from a broker (no mosquitto_sub needed); --sparkplug decodes Sparkplug B payloads',
  ],
  browse: [
    'edgeferry browse opc.tcp://HOST:PORT [--root NODE --depth N --filter REGEX --out FILE]',
    "write a device map from an OPC UA server's address space",
  ],
  buffer: [
    'edgeferry buffer stats|peek|export (--config FILE | --file BUFFER.db) [--limit N] [--dead-letters]',
    'look into the store-and-forward buffer (read-only; export = JSON lines)',
  ],
  model: [
    'edgeferry model eval --model DIR --images DIR --labels FILE [--split FILE] [--operating-point NAME] [--json]',
    'accuracy, precision, recall, F1, FPR, AUC and latency of an EL model',
  ],
};

const EXIT_LINE = 'exit codes: 0 ok · 1 runtime failure · 2 usage error · 3 configuration invalid';

const HELP = `edgeferry — industrial edge gateway: PLCs to MQTT/TLS, nothing lost

usage:
${Object.values(USAGE)
  .map(([u, what]) => (u.length < 32 ? `  ${u.padEnd(32)}${what}` : `  ${u}\n${' '.repeat(34)}${what}`))
  .join('\n')}

${EXIT_LINE}`;

const usageOf = (cmd: string) => `usage: ${USAGE[cmd]![0]}\n  ${USAGE[cmd]![1]}\n\n${EXIT_LINE}`;

/** `--help` or `-h` among a command's arguments (before a `--`). */
function asksHelp(args: string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd !== undefined && cmd in USAGE && asksHelp(rest)) {
    io.out(usageOf(cmd));
    return EXIT.OK;
  }
  try {
    switch (cmd) {
      case 'run':
        return await cmdRun(rest, io);
      case 'check':
        return cmdCheck(rest, io);
      case 'read':
        return await cmdRead(rest, io);
      case 'demo':
        // Loaded on demand: the demo brings simulators (and node-opcua) that run/check never need.
        return await (await import('../demo/demo.js')).runDemo(rest, io);
      case 'sub':
        return await runSubscribe(rest, io);
      case 'buffer':
        return await runBufferCli(rest, io);
      case 'browse':
        return await runBrowse(rest, io);
      case 'model':
        // Loaded on demand: onnxruntime and sharp are only for the EL stage.
        return await (await import('../inference/eval.js')).runModelCli(rest, io);
      case '--version':
      case 'version':
        io.out(io.version);
        return EXIT.OK;
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.out(HELP);
        return cmd === undefined ? EXIT.USAGE : EXIT.OK;
      default:
        io.err(`edgeferry: unknown command "${cmd}"\n\n${HELP}`);
        return EXIT.USAGE;
    }
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`edgeferry ${cmd}: ${(err as Error).message}\n\n${cmd && cmd in USAGE ? usageOf(cmd) : HELP}`);
      return EXIT.USAGE;
    }
    throw err;
  }
}
