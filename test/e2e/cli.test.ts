import assert from 'node:assert/strict';
import { once } from 'node:events';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect } from '../../sdk/client.ts';
import { until } from '../support/node.ts';
import { cli, endProcess, spawnCli } from '../support/processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('fnhost dev runs the example app, prints where it listens, and exits cleanly on SIGTERM', async () => {
  const dev = spawnCli(ROOT, ['dev', '--rtmfp', '127.0.0.1:0']);
  try {
    const listening = /rtmfp listening on udp:\/\/127\.0\.0\.1:(\d+)/;
    await until(() => listening.test(dev.output()) || dev.child.exitCode !== null, 20_000, 'the address');
    const port = listening.exec(dev.output())?.[1];
    assert.ok(port, `fnhost exited early: ${dev.errors()}`);
    const nc = await connect(`rtmfp://127.0.0.1:${port}/chat`, 'cli-user');
    assert.equal((nc.info as { greeting: string }).greeting, 'hello, cli-user');
    assert.equal(await nc.call('echo', 'cli'), 'cli');
    const closed = once(nc, 'close');
    dev.child.kill('SIGTERM');
    const [code] = await once(dev.child, 'exit');
    assert.equal(code, 0);
    const [info] = (await closed) as [{ code: string }];
    assert.equal(info.code, 'NetConnection.Connect.Closed');
  } finally {
    if (dev.child.exitCode === null) dev.child.kill('SIGKILL');
  }
});

test('fnhost names a bad flag and exits with status 2', async () => {
  const run = await cli(ROOT, ['dev', '--rtmfp', 'nonsense']);
  assert.equal(run.code, 2);
  assert.match(run.err, /--rtmfp/);
});

const COMMANDS = [
  'dev',
  'node',
  'deploy',
  'versions',
  'rollback',
  'status',
  'pause',
  'resume',
  'drain',
  'secret',
  'tail',
];

/**
 * CLI processes run at once: dev and node load esbuild, isolated-vm and the node runtime, and a
 * dozen processes that each loaded the whole CLI, at once on a busy 2-core machine, took longer
 * than `cli()` waits before calling a run hung.
 */
const AT_ONCE = 4;

/** `f` over `items`, AT_ONCE at a time; results in order. */
async function fewAtOnce<T, R>(items: T[], f: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += AT_ONCE) {
    results.push(...(await Promise.all(items.slice(i, i + AT_ONCE).map(f))));
  }
  return results;
}

test('every subcommand prints its usage for --help (and -h), on stdout with status 0', async () => {
  // -h takes the same path for every command: two of them show it.
  const asked = [...COMMANDS.map((command) => [command, '--help']), ['dev', '-h'], ['secret', '-h']];
  const runs = await fewAtOnce(asked, async ([command, flag]) => ({
    command,
    flag,
    run: await cli(ROOT, [command, flag]),
  }));
  for (const { command, flag, run } of runs) {
    assert.equal(run.code, 0, `${command} ${flag}: ${run.err}`);
    assert.match(run.out, new RegExp(`^usage: fnhost ${command} `), `${command} ${flag}`);
    assert.equal(run.err, '');
  }
});

test("an unknown option is one line naming it, then that subcommand's usage, with status 2", async () => {
  const runs = await fewAtOnce(COMMANDS, (command) => cli(ROOT, [command, '--bogus', 'x']));
  runs.forEach((run, i) => {
    const [first, blank, usage] = run.err.split('\n');
    assert.equal(run.code, 2, COMMANDS[i]);
    assert.equal(first, `fnhost ${COMMANDS[i]}: unknown option --bogus`);
    assert.equal(blank, '');
    assert.match(usage, new RegExp(`^usage: fnhost ${COMMANDS[i]} `));
    assert.equal(run.out, '');
  });
});

/** The modules `fnhost ARGS` loaded, as paths from the repository's root (test/support/loaded-modules.ts). */
async function loadedModules(args: string[]): Promise<string[]> {
  const preload = `--import=${new URL('../support/loaded-modules.ts', import.meta.url).href}`;
  const run = await cli(ROOT, args, {
    env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${preload}` },
  });
  assert.equal(run.code, 0, run.err);
  return [...run.err.matchAll(/^loaded: (.*)$/gm)].map(([, url]) =>
    url.startsWith('file:') ? path.relative(ROOT, fileURLToPath(url)) : url,
  );
}

test('fnhost --version and --help load no command and no package', async () => {
  for (const args of [['--version'], ['--help']]) {
    const ours = (await loadedModules(args)).filter((m) => !m.startsWith('node:'));
    assert.deepEqual(
      ours,
      ['runtime/cli/fnhost.ts', 'runtime/module-url.ts', 'runtime/cli/commands.ts'],
      args[0],
    );
  }
});

test("a cluster command's --help loads neither esbuild, isolated-vm, ioredis, pino nor the node runtime", async () => {
  // Packages resolve through the node_modules symlink of a worktree, so match them anywhere.
  const heavy =
    /(^|\/)node_modules\/(esbuild|isolated-vm|ioredis|pino)\/|^runtime\/(host|sandbox|http|relay)\//;
  const runs = await fewAtOnce(['status', 'secret', 'versions', 'tail'], async (command) => ({
    command,
    loaded: await loadedModules([command, '--help']),
  }));
  for (const { command, loaded } of runs) {
    assert.ok(loaded.includes(`runtime/cli/${command}.ts`), `${command} --help ran without its module`);
    assert.deepEqual(
      loaded.filter((m) => heavy.test(m)),
      [],
      `${command} --help`,
    );
  }
});

test('a flag without its value is named, not taken from the next flag', async () => {
  const run = await cli(ROOT, ['deploy', '--timeout', '--json']);
  assert.equal(run.code, 2);
  assert.match(run.err, /^fnhost deploy: --timeout needs a value\n\nusage: fnhost deploy /);
});

test('fnhost --version prints the package version; fnhost secret alone prints its usage', async () => {
  const version = await cli(ROOT, ['--version']);
  assert.equal(version.code, 0);
  assert.match(version.out, /^fnhost \d+\.\d+\.\d+\n$/);
  const secret = await cli(ROOT, ['secret']);
  assert.equal(secret.code, 0, secret.err);
  assert.match(secret.out, /^usage: fnhost secret put NAME/);
});

test('with --json, every line fnhost dev prints on stdout is JSON', async () => {
  const dev = spawnCli(ROOT, ['dev', '--rtmfp', '127.0.0.1:0', '--json']);
  try {
    await until(() => dev.output().includes('\n'), 20_000, 'the first line');
    const lines = dev.output().trimEnd().split('\n');
    const first = JSON.parse(lines[0]) as { app: string; url: string; rtmfp: string[] };
    assert.equal(first.app, 'chat');
    assert.equal(first.url, `rtmfp://${first.rtmfp[0]}/chat`);
    for (const line of lines) assert.doesNotThrow(() => JSON.parse(line), line);
  } finally {
    await endProcess(dev.child);
  }
});

test('a misspelled FNHOST_* variable is warned about before the command runs', async () => {
  const run = await cli(ROOT, ['versions'], { env: { FNHOST_REDSI: 'redis://127.0.0.1:6379' } });
  assert.match(
    run.err,
    /^fnhost: warning: config: unknown variable FNHOST_REDSI, ignored \(known: .*FNHOST_REDIS/,
  );
  assert.match(run.err, /versions needs a cluster/, 'the misspelled variable did not set the cluster');
  assert.equal(run.code, 2);
});

test('dev and deploy of a folder that is not there say so', async () => {
  // deploy checks that it has a cluster first; nothing listens at that one, and it is not reached.
  for (const args of [
    ['dev', 'nosuchdir'],
    ['deploy', 'nosuchdir', '--redis', 'redis://127.0.0.1:1'],
  ]) {
    const run = await cli(ROOT, args);
    assert.equal(run.code, 1, run.err);
    assert.match(
      run.err,
      /^fnhost: no folder nosuchdir \(give your functions' folder on the command line, or main in wrangler-like\.toml\)\n$/,
    );
  }
});

test('a refused Redis connection is said at once, naming where', async () => {
  // Nothing listens on port 1 of the loopback: the connection is refused, not left unanswered.
  const run = await cli(ROOT, ['status', '--redis', 'redis://127.0.0.1:1']);
  assert.equal(run.code, 1);
  assert.equal(
    run.err,
    'fnhost: cannot reach the cluster store at redis://127.0.0.1:1: connection refused at 127.0.0.1:1\n',
  );
});
