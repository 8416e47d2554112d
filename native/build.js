// Builds native/build/packet.node, fnhost's native packet path (native/packet.c), with the
// machine's C compiler; `npm install` runs it. Without a compiler, Node-API headers or AES-NI,
// fnhost runs on node:crypto and dgram instead, so this never fails the install: it says why
// and exits 0. Plain JavaScript: Node does not strip types under node_modules.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const source = path.join(here, 'packet.c');
const output = path.join(here, 'build', 'packet.node');

/** Node-API headers: the node-api-headers package, else those of the Node that runs this. */
function headers() {
  try {
    const require = createRequire(import.meta.url);
    return path.join(path.dirname(require.resolve('node-api-headers/package.json')), 'include');
  } catch {
    return path.join(path.dirname(process.execPath), '..', 'include', 'node');
  }
}

const include = headers();
const compiler = process.env.CC || 'cc';
const args = [
  '-O2',
  '-maes',
  '-msse4.1',
  '-fPIC',
  '-shared',
  '-fvisibility=hidden',
  '-DNODE_GYP_MODULE_NAME=packet',
  '-I',
  include,
  '-o',
  output,
  source,
];
try {
  if (!existsSync(path.join(include, 'node_api.h'))) throw new Error(`no node_api.h in ${include}`);
  mkdirSync(path.dirname(output), { recursive: true });
  execFileSync(compiler, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  console.log(`fnhost: built the native packet path (${path.relative(process.cwd(), output)})`);
} catch (e) {
  const why = e instanceof Error ? (e.stderr?.toString().trim().split('\n')[0] ?? e.message) : String(e);
  console.log(`fnhost: native packet path not built (${why}); nodes will use node:crypto and dgram`);
}
