import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../../sdk/client.ts';

const CLI = fileURLToPath(new URL('../../runtime/cli/fnhost.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('fnhost dev runs the example app, prints where it listens, and exits cleanly on SIGTERM', async () => {
  const child = spawn(process.execPath, ['--no-node-snapshot', CLI, 'dev', '--rtmfp', '127.0.0.1:0'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    child.stdout.setEncoding('utf8');
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        const m = /rtmfp listening on udp:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`fnhost exited early (${code}): ${out}`)));
    });
    const nc = await connect(`rtmfp://127.0.0.1:${port}/chat`, 'cli-user');
    assert.equal((nc.info as { greeting: string }).greeting, 'hello, cli-user');
    assert.equal(await nc.call('echo', 'cli'), 'cli');
    const closed = once(nc, 'close');
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
    const [info] = (await closed) as [{ code: string }];
    assert.equal(info.code, 'NetConnection.Connect.Closed');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});

test('fnhost names a bad flag and exits with status 2', async () => {
  const child = spawn(process.execPath, [CLI, 'dev', '--rtmfp', 'nonsense'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (c: string) => {
    err += c;
  });
  const [code] = await once(child, 'exit');
  assert.equal(code, 2);
  assert.match(err, /--rtmfp/);
});
