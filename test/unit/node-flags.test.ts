import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { NODE_FLAGS } from '../../runtime/cli/node-flags.ts';

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');

test('every way of starting fnhost runs Node with NODE_FLAGS', () => {
  const starts = {
    'bin/fnhost.js': read('bin/fnhost.js').split('\n')[0],
    'runtime/cli/fnhost.ts': read('runtime/cli/fnhost.ts').split('\n')[0],
    'npm run dev': JSON.parse(read('package.json')).scripts.dev as string,
  };
  for (const [where, line] of Object.entries(starts))
    for (const flag of NODE_FLAGS)
      assert.ok(line.split(/\s+/).includes(flag), `${where} lacks ${flag}: ${line}`);
});
