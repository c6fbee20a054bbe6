// The SQLite binding, by the Node it runs on. better-sqlite3 13 (Node-API) is the one for Node 22
// and later, and the only one that survives Node 24: 12.x's statements abort the process there
// when the garbage collector finalizes them ("Assertion failed: (env) != nullptr" in
// node::RemoveEnvironmentCleanupHook; upstream closed it unfixed). 13 in turn crashes Node 20 with
// a segmentation fault. Releases bundle Node 24 and carry only 13; a checkout on the machine's
// Node 20 uses 12. The API the buffer uses is the same in both.
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);
export const SQLITE_MODULE = Number(process.versions.node.split('.')[0]) >= 22 ? 'better-sqlite3-napi' : 'better-sqlite3';
const Database = require(SQLITE_MODULE) as typeof BetterSqlite3;
export default Database;
export type Db = BetterSqlite3.Database;
