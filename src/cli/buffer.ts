// `edgeferry buffer stats|peek|export`: look into the store-and-forward buffer of a gateway config
// (or a buffer file given with --file), read-only, while the daemon runs or not.
import Database, { type Db } from '../buffer/sqlite.js';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { DRIVERS } from '../../drivers/registry.js';
import { EXIT, type CliIo } from './io.js';
import { ConfigLoader } from '../config/load.js';
import { formatProblem } from '../config/yaml-file.js';
import { PRIORITIES, walBytes } from '../buffer/sqlite-buffer.js';
import { withSeq } from '../buffer/body.js';

const USAGE = 'usage: edgeferry buffer stats|peek|export (--config GATEWAY.yaml | --file BUFFER.db) [--limit N] [--dead-letters]';

export async function runBufferCli(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: 'string', short: 'c' },
      file: { type: 'string' },
      limit: { type: 'string', default: '20' },
      'dead-letters': { type: 'boolean', default: false },
    },
  });
  const sub = positionals[0];
  if (!sub || !['stats', 'peek', 'export'].includes(sub) || (!values.config && !values.file)) {
    io.err(USAGE);
    return EXIT.USAGE;
  }
  let path = values.file ? resolve(io.cwd, values.file) : '';
  if (values.config) {
    const { config, problems } = new ConfigLoader(DRIVERS, io.cwd).loadGatewayConfig(values.config);
    if (!config) {
      for (const p of problems) io.err(formatProblem(p));
      return EXIT.CONFIG_INVALID;
    }
    const p = config.gateway.buffer.path;
    path = isAbsolute(p) ? p : resolve(config.baseDir, p);
  }
  let db: Db;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    io.err(`edgeferry buffer: cannot open "${path}": ${(err as Error).message}`);
    return EXIT.FAILURE;
  }
  try {
    if (sub === 'stats') {
      const n = (sql: string, ...a: unknown[]) =>
        (db
          .prepare(sql)
          .pluck()
          .get(...a) as number | null) ?? 0;
      const pages = n('PRAGMA page_count') - n('PRAGMA freelist_count');
      const oldest = db.prepare('SELECT min(ts) FROM samples').pluck().get() as number | null;
      const byPrio = Object.fromEntries(PRIORITIES.map((p, i) => [p, n('SELECT count(*) FROM samples WHERE prio = ?', i)]));
      io.out(
        JSON.stringify(
          {
            file: path,
            depth: n('SELECT count(*) FROM samples'),
            by_priority: byPrio,
            bytes: pages * n('PRAGMA page_size') + walBytes(path),
            oldest: oldest === null ? null : new Date(oldest).toISOString(),
            oldest_age_s: oldest === null ? 0 : Math.round((Date.now() - oldest) / 1000),
            last_seq: n("SELECT seq FROM sqlite_sequence WHERE name = 'samples'"),
            evicted: n("SELECT value FROM counters WHERE name = 'evicted'"),
            lost_unstored: n("SELECT value FROM counters WHERE name = 'lost_unstored'"),
            lost_damaged: n("SELECT value FROM counters WHERE name = 'lost_damaged'"),
            dead_letters: n('SELECT count(*) FROM dead_letter'),
            pending_events: n('SELECT count(*) FROM events'),
          },
          null,
          2,
        ),
      );
      return EXIT.OK;
    }
    // peek: the next N messages as they will be published; export: all of them, as JSON lines.
    const limit = sub === 'peek' ? Number(values.limit) : -1;
    const table = values['dead-letters'] ? 'dead_letter' : 'samples';
    const extra = values['dead-letters'] ? ', reason' : '';
    const stmt = db.prepare(`SELECT seq, device, point, body${extra} FROM ${table} ORDER BY seq LIMIT ?`);
    let written = 0;
    try {
      for (const r of stmt.iterate(limit) as Iterable<{ seq: number; device: string; point: string; body: string; reason?: string }>) {
        const line = withSeq(
          r.seq,
          `{"device":${JSON.stringify(r.device)},"point":${JSON.stringify(r.point)},${r.reason !== undefined ? `"dead_letter_reason":${JSON.stringify(r.reason)},` : ''}${r.body.slice(1)}`,
        );
        io.out(line);
        written++;
      }
    } catch (err) {
      // A damaged file (moved aside by the gateway): what came before the bad page is out already.
      io.err(`edgeferry buffer: "${path}": stopped after ${written} messages: ${(err as Error).message}`);
      return EXIT.FAILURE;
    }
    // Said on stderr: stdout stays JSON lines (none) for whatever reads it.
    if (!written) io.err(`edgeferry buffer: "${path}": ${values['dead-letters'] ? 'no dead letters' : 'nothing waiting (the buffer is empty)'}`);
    return EXIT.OK;
  } finally {
    db.close();
  }
}
