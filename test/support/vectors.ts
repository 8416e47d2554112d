import { readFileSync } from 'node:fs';

/** A byte-vector file from test/fixtures/vectors; each says where its bytes come from. */
export function loadVectors<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../fixtures/vectors/${name}.json`, import.meta.url), 'utf8')) as T;
}
