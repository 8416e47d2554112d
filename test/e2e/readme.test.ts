import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { until } from '../support/node.ts';
import { endProcess, spawnCli } from '../support/processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
/** tsc or the snippet taking longer than this is hung. */
const RUN_TIMEOUT_MS = 60_000;

test("the README's client snippet passes the project's strict tsc and, run with the project's Node in the project, does what its comments say", async () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const snippet = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)]
    .map((m) => m[1])
    .find((code) => code.includes("from 'fnhost/client'"));
  assert.ok(snippet, 'the README has a client snippet');
  // In the project (a git-ignored folder), where `fnhost/client` resolves as the README says.
  mkdirSync(join(ROOT, '.scratch'), { recursive: true });
  const dir = mkdtempSync(join(ROOT, '.scratch', 'readme-'));
  const dev = spawnCli(ROOT, ['dev', '--rtmfp', '127.0.0.1:0']);
  try {
    const listening = /rtmfp listening on udp:\/\/(127\.0\.0\.1:\d+)/;
    await until(() => listening.test(dev.output()) || dev.child.exitCode !== null, 20_000, 'fnhost dev');
    const address = listening.exec(dev.output())?.[1];
    assert.ok(address, dev.errors());
    writeFileSync(join(dir, 'client.ts'), snippet.replace('127.0.0.1:1935', address));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: '../../tsconfig.json', include: [], files: ['client.ts'] }),
    );

    const tsc = spawnSync(process.execPath, [TSC, '-p', dir], { encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);

    // In a checkout `fnhost/client` is the TypeScript source under this condition (README.md).
    const run = spawnSync(process.execPath, ['--conditions=fnhost-source', 'client.ts'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: RUN_TIMEOUT_MS,
    });
    assert.equal(run.status, 0, run.stderr);
    const [greeting, ping, count, ...rest] = run.stdout.trimEnd().split('\n');
    assert.equal(greeting, 'hello, alice');
    assert.match(ping, /^\{ clientSaid: 'pong at \d+' \}$/);
    assert.match(count, /^\d+$/);
    assert.deepEqual(rest, []);
  } finally {
    await endProcess(dev.child);
    rmSync(dir, { recursive: true, force: true });
  }
});
