import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CHECK = 'test/support/require-redis.ts';

test('npm test first checks for redis-server and, without one, says what is missing in one line and stops', () => {
  const scripts = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as { scripts: { test: string } })
    .scripts;
  assert.ok(scripts.test.startsWith(`node ${CHECK} && `), scripts.test);

  const missing = spawnSync(process.execPath, [CHECK], {
    cwd: ROOT,
    env: { ...process.env, REDIS_SERVER: '/nonexistent/redis-server' },
    encoding: 'utf8',
  });
  assert.equal(missing.status, 1);
  assert.equal(missing.stdout, '');
  assert.match(
    missing.stderr,
    /^npm test needs redis-server on PATH, .*apt-get install -y redis-server.*\)\n$/,
  );

  const present = spawnSync(process.execPath, [CHECK], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(present.status, 0, present.stderr);
  assert.equal(present.stderr, '');
});
