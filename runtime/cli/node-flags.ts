/**
 * The flags every fnhost process runs Node with. `#!` lines cannot import, so bin/fnhost.js,
 * runtime/cli/fnhost.ts and package.json's `dev` script spell them out; test/unit/node-flags
 * checks they agree with this list, and tests and benchmarks that start the CLI use it.
 * - `--no-node-snapshot`: isolated-vm needs it when several isolates live in one process.
 * - `--max-semi-space-size=1` (MB): V8 otherwise grows the young generation to 2 × 16 MB as
 *   traffic rises, and a node's resident memory with it: at 100 live players that growth read
 *   as 90–150 kB per player against rtmfp-cpp's 40 (test/bench `o`). Media state lives for a
 *   round trip, so young objects still die young in 1 MB; scavenges come more often and each
 *   stays cheap.
 */
export const NODE_FLAGS: readonly string[] = ['--no-node-snapshot', '--max-semi-space-size=1'];
