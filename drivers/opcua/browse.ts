// `edgeferry browse opc.tcp://…`: walks a server's address space and writes a device map with one
// point per variable (data type as a comment), ready to edit and pass `edgeferry check`.
import type { ReferenceDescription } from 'node-opcua';
import type { Logger } from 'pino';
import { OpcuaLink } from './link.js';
import type { OpcuaConnectionConfig } from './schema.js';
import { BUILTIN } from './types.js';

const HIERARCHICAL = 'i=33';
const NODE_CLASS = { Object: 1, Variable: 2 };
const VALUE_RANK = 14 + 1; // AttributeIds.ValueRank = 15
const DATA_TYPE = 14; // AttributeIds.DataType
const SERVER_OBJECT = 2253;
/** Point names stay at most this long; longer paths keep their last whole segments. */
const NAME_MAX = 64;

export interface BrowseOptions {
  connection: OpcuaConnectionConfig;
  baseDir: string;
  root: string;
  depth: number;
  filter?: RegExp;
  deviceName: string;
  log: Logger;
}

export interface FoundVariable {
  path: string[];
  nodeId: string;
  dataType: string;
  array: boolean;
}

const sanitize = (s: string) => s.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^_+|_+$/g, '') || 'x';

/** A point name from a browse path: the last segments that fit in NAME_MAX, never a cut word. */
export function pointName(path: string[]): string {
  const parts = path.map(sanitize);
  let name = parts[parts.length - 1]!;
  if (name.length > NAME_MAX) return name.slice(0, NAME_MAX);
  for (let i = parts.length - 2; i >= 0 && name.length + 1 + parts[i]!.length <= NAME_MAX; i--) name = `${parts[i]}.${name}`;
  return name;
}

export async function browseServer(o: BrowseOptions): Promise<FoundVariable[]> {
  const link = new OpcuaLink(o.connection, o.baseDir, o.log, 'run browse again with --trust-server to accept a first certificate');
  await link.open(new AbortController().signal, () => undefined);
  try {
    const { session } = link.session();
    const found: FoundVariable[] = [];
    const seen = new Set<string>();
    const walk = async (nodeId: string, path: string[], depth: number): Promise<void> => {
      if (depth > o.depth || seen.has(nodeId)) return;
      seen.add(nodeId);
      const result = await session.browse({
        nodeId,
        referenceTypeId: HIERARCHICAL,
        includeSubtypes: true,
        browseDirection: 0 /* Forward */,
        nodeClassMask: NODE_CLASS.Object | NODE_CLASS.Variable,
        resultMask: 63,
      });
      const refs: ReferenceDescription[] = result.references ?? [];
      for (const ref of refs) {
        const child = ref.nodeId.toString();
        // The Server object is the server's own status and diagnostics — with the diagnostics
        // nodes of this very browsing session — not plant data (browse it with --root i=2253).
        if (ref.nodeId.namespace === 0 && ref.nodeId.value === SERVER_OBJECT) continue;
        const name = ref.browseName.name ?? child;
        const childPath = [...path, name];
        if (Number(ref.nodeClass) === NODE_CLASS.Variable) {
          const [dt, rank] = await session.read([
            { nodeId: child, attributeId: DATA_TYPE },
            { nodeId: child, attributeId: VALUE_RANK },
          ]);
          const typeId = dt?.value?.value as { namespace?: number; value?: unknown } | undefined;
          const dataType =
            typeId && typeId.namespace === 0 && typeof typeId.value === 'number' ? (BUILTIN[typeId.value] ?? `i=${typeId.value}`) : String(typeId ?? 'unknown');
          const full = childPath.join('.');
          if (!o.filter || o.filter.test(full)) found.push({ path: childPath, nodeId: child, dataType, array: Number(rank?.value?.value ?? -1) >= 1 });
        }
        await walk(child, childPath, depth + 1);
      }
    };
    await walk(o.root, [], 1);
    return found;
  } finally {
    await link.close();
  }
}

/** The device map YAML for what browse found. */
export function deviceMapYaml(o: BrowseOptions, found: FoundVariable[]): string {
  const names = new Set<string>();
  const c = o.connection;
  const lines = [
    `# Written by \`edgeferry browse ${c.endpoint}\` on ${new Date().toISOString()}: ${found.length} variables.`,
    '# Edit names, drop what you do not need, then: edgeferry check <this file>',
    'version: 1',
    'devices:',
    `  - name: ${sanitize(o.deviceName)}`,
    '    driver: opcua',
    '    poll_interval_ms: 1000',
    '    connection:',
    `      endpoint: ${JSON.stringify(c.endpoint)}`,
    `      security_policy: ${c.security_policy}`,
    `      security_mode: ${c.security_mode}`,
    ...(c.auth !== 'anonymous' ? [`      auth: ${c.auth}`] : []),
    ...(c.username ? [`      username: ${JSON.stringify(c.username)}`] : []),
    ...(c.password_file ? [`      password_file: ${JSON.stringify(c.password_file)}`] : []),
    '    points:',
  ];
  for (const v of found) {
    const base = pointName(v.path);
    let name = base;
    for (let i = 2; names.has(name); i++) name = `${base.slice(0, NAME_MAX - 4)}_${i}`;
    names.add(name);
    lines.push(`      - { name: ${name}, node_id: ${JSON.stringify(v.nodeId)} } # ${v.dataType}${v.array ? '[]' : ''}`);
  }
  return lines.join('\n') + '\n';
}
