import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { until } from '../support/node.ts';
import { cli, nodePrinted } from '../support/processes.ts';
import { startRedis } from '../support/redis.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** npm pack (a tsc build) or npm install taking longer than this is hung. */
const NPM_TIMEOUT_MS = 120_000;
/** A client run, a typecheck or a deploy taking longer than this is hung. */
const STEP_TIMEOUT_MS = 60_000;
const LISTENING = /rtmfp listening on udp:\/\/(127\.0\.0\.1:\d+)/;
const PROJECT_FILES = [
  '.gitignore',
  'README.md',
  'client.ts',
  'functions/index.ts',
  'package.json',
  'tsconfig.json',
  'wrangler-like.toml',
];

const execFileAsync = promisify(execFile);

/**
 * A user's shell: this process's environment without what `npm test` adds for its script
 * (npm_*) or a developer's FNHOST_* settings, so npm and fnhost behave as they would for them.
 */
function userEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('npm_') && !k.startsWith('FNHOST_')),
  );
}

/** Runs a command to its end in `cwd`; rejects with its output if it fails or hangs. */
async function run(cwd: string, command: string, args: string[], timeout = STEP_TIMEOUT_MS) {
  try {
    return await execFileAsync(command, args, { cwd, env: userEnv(), timeout, encoding: 'utf8' });
  } catch (e) {
    const { stdout, stderr } = e as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${String(e)}\n${stdout}${stderr}`);
  }
}

/**
 * A long-running `npx fnhost …` in its own process group, so npx and the node it starts end
 * together; `output()`/`errors()` are what it printed so far on stdout/stderr.
 */
function start(cwd: string, args: string[]): { child: ChildProcess; output(): string; errors(): string } {
  const child = spawn('npx', ['fnhost', ...args], { cwd, env: userEnv(), detached: true });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  return { child, output: () => out, errors: () => err };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, 'exit');
  process.kill(-child.pid, 'SIGTERM');
  await exited;
}

test('a project made by fnhost init from the npm pack tarball installs, typechecks, runs with fnhost dev, answers its client script and deploys to a cluster', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'fnhost-project-'));
  const processes: ChildProcess[] = [];
  const redis = await startRedis();
  try {
    const packed = await run(ROOT, 'npm', ['pack', '--json', '--pack-destination', tmp], NPM_TIMEOUT_MS);
    const [{ filename, files }] = JSON.parse(packed.stdout) as {
      filename: string;
      files: { path: string }[];
    }[];
    const shipped = files.map((f) => f.path);
    assert.ok(shipped.includes('dist/runtime/cli/fnhost.js') && shipped.includes('dist/sdk/client.d.ts'));
    const strays = shipped.filter(
      (f) =>
        !/^(bin|dist|templates)\/|^(package\.json|README\.md|native\/packet\.c|native\/build\.js)$/.test(f),
    );
    assert.deepEqual(
      strays,
      [],
      'the tarball holds only the CLI, the compiled code, the templates and the native source',
    );

    const init = await cli(tmp, ['init', 'my-app', '--fnhost', join(tmp, filename)]);
    assert.equal(init.code, 0, init.err);
    const project = join(tmp, 'my-app');
    const pkg = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8'));
    assert.equal(pkg.dependencies.fnhost, `file:../${filename}`);

    await run(project, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], NPM_TIMEOUT_MS);
    // Its install script built the native packet path wherever this checkout's did.
    assert.equal(
      existsSync(join(project, 'node_modules', 'fnhost', 'native', 'build', 'packet.node')),
      existsSync(join(ROOT, 'native', 'build', 'packet.node')),
      'the installed package built native/build/packet.node as the checkout did',
    );

    // The installed package's own CLI refuses to write over a project, and its templates shipped.
    const keep = readFileSync(join(project, 'functions', 'index.ts'), 'utf8');
    await assert.rejects(run(project, 'npx', ['fnhost', 'init', '.']), /\. is not empty .*never overwrites/);
    assert.equal(readFileSync(join(project, 'functions', 'index.ts'), 'utf8'), keep);
    const second = await run(project, 'npx', ['fnhost', 'init', '../second', '--json']);
    assert.deepEqual(JSON.parse(second.stdout), {
      created: join(tmp, 'second'),
      name: 'second',
      files: PROJECT_FILES,
      fnhost: `^${JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version}`,
    });
    assert.deepEqual(
      readdirSync(join(tmp, 'second'), { recursive: true, encoding: 'utf8' }).sort(),
      [...PROJECT_FILES, 'functions'].sort(),
    );

    // The app and the client script against fnhost/sdk's and fnhost/client's shipped .d.ts.
    await run(project, 'npx', ['tsc', '--noEmit']);

    const dev = start(project, ['dev', '--rtmfp', '127.0.0.1:0']);
    processes.push(dev.child);
    await until(() => LISTENING.test(dev.output()) || dev.child.exitCode !== null, 30_000, 'fnhost dev');
    const devAddress = LISTENING.exec(dev.output())?.[1];
    assert.ok(devAddress, dev.output() + dev.errors());
    const answer = await run(project, 'npx', ['node', 'client.ts', `rtmfp://${devAddress}/my-app`]);
    assert.deepEqual(answer.stdout.trimEnd().split('\n'), ['hello, alice', 'alice said hi', '1']);
    await stop(dev.child);

    const node = start(project, [
      'node',
      '--redis',
      redis.url,
      '--rtmfp',
      '127.0.0.1:0',
      '--http',
      '127.0.0.1:0',
      '--json',
    ]);
    processes.push(node.child);
    const printed = () => nodePrinted(node.output());
    await until(() => printed().node !== undefined || node.child.exitCode !== null, 30_000, 'fnhost node');
    const nodeAddress = printed().rtmfp?.[0];
    assert.ok(nodeAddress, node.output() + node.errors());
    const deployed = await run(project, 'npx', ['fnhost', 'deploy', 'functions/', '--redis', redis.url]);
    assert.match(deployed.stdout, /deployed my-app [0-9a-f]{12}: active on 1\/1 nodes/);
    const fromNode = await run(project, 'npx', ['node', 'client.ts', `rtmfp://${nodeAddress}/my-app`]);
    assert.deepEqual(fromNode.stdout.trimEnd().split('\n'), ['hello, alice', 'alice said hi', '1']);
  } finally {
    await Promise.all(processes.map(stop));
    await redis.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
});
