#!/usr/bin/env -S node --no-node-snapshot --max-semi-space-size=1
// The `fnhost` command. In a checkout it runs the TypeScript sources (Node strips their types);
// the package built by `npm pack` has no sources, only dist/, which tsc compiled from them
// (Node refuses to strip types under node_modules). --no-node-snapshot: isolated-vm needs it.
import { existsSync } from 'node:fs';

const source = new URL('../runtime/cli/fnhost.ts', import.meta.url);
await import(
  existsSync(source) ? source.href : new URL('../dist/runtime/cli/fnhost.js', import.meta.url).href
);
