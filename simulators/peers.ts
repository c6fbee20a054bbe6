// Where the independent peers are: implementations of our protocols that nobody on the team wrote
// (open62541 and bacnet-stack builds, with their sources and build notes), which every developer
// and CI have at ../shared/peers. Tests and benchmarks run them; nothing of them enters the repo.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root, from here (simulators/ in the sources, dist/simulators/ when built). */
const repo = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json')) && dirname(d) !== d) d = dirname(d);
  return d;
})();

/** The folder with the peers' binaries: $EDGEFERRY_PEERS/bin, or shared/peers/bin beside the checkout or above it. */
export function peersBin(): string {
  const tried = [process.env.EDGEFERRY_PEERS, join(repo, '../shared/peers'), join(repo, '../../shared/peers'), '/work/shared/peers']
    .filter((p): p is string => !!p)
    .map((p) => resolve(p));
  for (const p of tried) if (existsSync(join(p, 'bin', 'ref_server')) && existsSync(join(p, 'bin', 'bacserv'))) return join(p, 'bin');
  throw new Error(`the independent peers (shared/peers/bin/ref_server, bacserv, …) are not at ${tried.join(', ')}; set EDGEFERRY_PEERS to their folder`);
}
