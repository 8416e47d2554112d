import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { until } from '../support/node.ts';
import { cli, endProcess, spawnCli } from '../support/processes.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

const APP = 'chat';

const GOOD_APP = `import { defineApp } from 'fnhost/sdk';
export default defineApp({
  onStart(ctx) {
    ctx.log.info('started');
  },
});
`;

let redis: TestRedis;
let state: RedisState;
const dirs: string[] = [];

before(async () => {
  redis = await startRedis();
  state = await RedisState.connect(redis.url, { cluster: 'default', logger: pino({ level: 'silent' }) });
});

after(async () => {
  await state?.close();
  await redis?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A project folder with wrangler-like.toml pointing at the test Redis and `functions/index.ts`. */
function project(index: string, o: { app?: string; redis?: boolean } = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fnhost-deploy-'));
  dirs.push(dir);
  const cluster = o.redis === false ? '' : `[cluster]\nredis = "${redis.url}"\n`;
  writeFileSync(
    path.join(dir, 'wrangler-like.toml'),
    `name = "${o.app ?? APP}"\nmain = "functions/"\n${cluster}[vars]\nGREETING = "hi"\n`,
  );
  mkdirSync(path.join(dir, 'functions'));
  writeFileSync(path.join(dir, 'functions', 'index.ts'), index);
  return dir;
}

/** Runs `fnhost ...args` in `cwd` as a user would. */
const fnhost = (cwd: string, args: string[], stdin?: string) => cli(cwd, args, { stdin });

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

test('a deploy that does not build exits 1 naming file and line, and leaves the cluster unchanged', async () => {
  const dir = project(`import { defineApp } from 'fnhost/sdk';
export default defineApp({
  onStart(ctx) {
    const x: number = ;
  },
});
`);
  const run = await fnhost(dir, ['deploy']);
  assert.equal(run.code, 1, run.err);
  assert.match(run.err, /build failed/);
  assert.match(run.err, /functions\/index\.ts:4:\d+: error:/);
  assert.deepEqual(await state.versions(APP), []);
  assert.equal(await state.active(APP), undefined);
});

test('a deploy whose onStart throws exits 1 with the mapped stack, and leaves the cluster unchanged', async () => {
  const dir = project(`import { defineApp } from 'fnhost/sdk';
export default defineApp({
  onStart(ctx) {
    throw new Error('no database configured');
  },
});
`);
  const run = await fnhost(dir, ['deploy']);
  assert.equal(run.code, 1, run.err);
  assert.match(run.err, /onStart failed: no database configured/);
  assert.match(run.err, /functions\/index\.ts:4:\d+/);
  assert.match(run.err, /nothing was deployed/);
  assert.deepEqual(await state.versions(APP), []);
  assert.equal(await state.active(APP), undefined);
});

test('deploy without a cluster is a usage error that says how to give one', async () => {
  const run = await fnhost(project(GOOD_APP, { redis: false }), ['deploy']);
  assert.equal(run.code, 2);
  assert.match(run.err, /deploy needs a cluster: --redis URL or \[cluster\] redis/);
});

test('deploy, versions, a second deploy and rollback move the active version as the user asked', async () => {
  const dir = project(GOOD_APP);
  const first = await fnhost(dir, ['deploy']);
  assert.equal(first.code, 0, first.err);
  assert.match(first.out, /^deployed chat [0-9a-f]{12}: active on 0\/0 nodes \(\d+\.\d\d s\)\n$/);
  assert.match(first.err, /bundling[\s\S]*checking[\s\S]*uploading[\s\S]*activating[\s\S]*waiting/);

  const history = await state.versions(APP);
  assert.equal(history.length, 1);
  const v1 = history[0].hash;
  assert.equal(first.out.slice('deployed chat '.length, 'deployed chat '.length + 12), v1.slice(0, 12));
  assert.equal(await state.active(APP), v1);
  assert.deepEqual(history[0].files, ['index.ts']);
  const stored = await state.getBundle(APP, v1);
  assert.ok(stored, 'the bundle is stored under its hash');
  assert.equal(stored.hash, v1);
  assert.equal(sha256(stored.code), v1);
  assert.doesNotThrow(() => JSON.parse(stored.map));

  const listed = await fnhost(dir, ['versions']);
  assert.equal(listed.code, 0, listed.err);
  assert.match(
    listed.out,
    new RegExp(`^\\*\\s+${v1.slice(0, 12)}\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z\\s+\\S+@\\S+\\s+1$`, 'm'),
  );

  const again = await fnhost(dir, ['deploy', '--json']);
  assert.equal(again.code, 0, again.err);
  const { seconds, ...report } = JSON.parse(again.out) as Record<string, unknown>;
  assert.deepEqual(report, { app: APP, hash: v1, alreadyActive: true, nodes: [] });
  assert.equal(typeof seconds, 'number');
  assert.equal((await state.versions(APP)).length, 1, 'an already active version is not deployed twice');

  writeFileSync(path.join(dir, 'functions', 'index.ts'), GOOD_APP.replace('started', 'started again'));
  const second = await fnhost(dir, ['deploy', '--json']);
  assert.equal(second.code, 0, second.err);
  const v2 = (JSON.parse(second.out) as { hash: string }).hash;
  assert.notEqual(v2, v1);
  assert.equal(await state.active(APP), v2);
  assert.deepEqual(
    (await state.versions(APP)).map((v) => v.hash),
    [v2, v1],
  );

  const back = await fnhost(dir, ['rollback']);
  assert.equal(back.code, 0, back.err);
  assert.match(back.out, new RegExp(`^rolled back chat to ${v1.slice(0, 12)}: active on 0/0 nodes`));
  assert.equal(await state.active(APP), v1);

  const forward = await fnhost(dir, ['rollback', v2.slice(0, 8)]);
  assert.equal(forward.code, 0, forward.err);
  assert.equal(await state.active(APP), v2);

  const unknown = await fnhost(dir, ['rollback', 'ffffff00']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /no version starting with ffffff00/);
  const short = await fnhost(dir, ['rollback', 'abc']);
  assert.equal(short.code, 2);
  assert.equal(await state.active(APP), v2);
});

test('status --json reports the store time and no nodes when none run', async () => {
  const run = await fnhost(project(GOOD_APP), ['status', '--json']);
  assert.equal(run.code, 0, run.err);
  const body = JSON.parse(run.out) as { time: number; nodes: unknown[] };
  assert.deepEqual(body.nodes, []);
  assert.ok(Math.abs(body.time - (await state.time())) < 5_000);
});

test('secret put stores the value from stdin without its trailing newline; list shows names; delete removes one', async () => {
  const dir = project(GOOD_APP, { app: 'secrets-app' });
  const run = await fnhost(dir, ['secret', 'put', 'API_KEY'], 's3cr3t value\n');
  assert.equal(run.code, 0, run.err);
  assert.equal(
    run.out,
    'secret API_KEY set for app secrets-app; no version is deployed yet: the first deploy gets it\n',
  );
  assert.deepEqual((await state.secrets('secrets-app')).values, { API_KEY: 's3cr3t value' });
  const json = await fnhost(dir, ['secret', 'put', 'OTHER', '--json'], 'x');
  assert.equal(json.code, 0, json.err);
  assert.deepEqual(JSON.parse(json.out), { app: 'secrets-app', secret: 'OTHER', revision: 2, active: null });

  const bad = await fnhost(dir, ['secret', 'put', 'api-key'], 'x\n');
  assert.equal(bad.code, 2);
  assert.match(bad.err, /secret name/);
  assert.deepEqual((await state.secrets('secrets-app')).values, { API_KEY: 's3cr3t value', OTHER: 'x' });

  const list = await fnhost(dir, ['secret', 'list']);
  assert.equal(list.code, 0, list.err);
  assert.equal(list.out, 'API_KEY\nOTHER\n', 'names, never values');
  const deleted = await fnhost(dir, ['secret', 'delete', 'OTHER']);
  assert.equal(deleted.code, 0, deleted.err);
  assert.match(deleted.out, /^secret OTHER deleted for app secrets-app;/);
  const listJson = await fnhost(dir, ['secret', 'list', '--json']);
  assert.deepEqual(JSON.parse(listJson.out), { app: 'secrets-app', secrets: ['API_KEY'] });
  const missing = await fnhost(dir, ['secret', 'delete', 'OTHER']);
  assert.equal(missing.code, 1);
  assert.equal(missing.err, 'fnhost: no secret OTHER for app secrets-app (see fnhost secret list)\n');
});

test('tail of an app that is not deployed warns, naming the deployed ones, and keeps tailing', async () => {
  const dir = project(GOOD_APP);
  const deployed = await fnhost(dir, ['deploy']);
  assert.equal(deployed.code, 0, deployed.err);
  const tail = spawnCli(dir, ['tail', 'nosuchapp']);
  try {
    await until(() => tail.errors().includes('Ctrl-C to stop'), 15_000, 'tail to start');
    assert.match(
      tail.errors(),
      /^warning: no app "nosuchapp" in cluster "default" \(deployed: chat\); tailing it anyway\n/,
    );
    assert.equal(tail.child.exitCode, null, 'still tailing');
  } finally {
    assert.equal(await endProcess(tail.child, 'SIGINT'), 0);
  }
});
