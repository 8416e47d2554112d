import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { idleNodeRecord } from '../support/node-records.ts';
import { cli } from '../support/processes.ts';
import { startRedis, type TestRedis } from '../support/redis.ts';

let redis: TestRedis;
let state: RedisState;
let dir: string;

/** A group ID (64 hex digits) per `n`, and a peer ID per `n`. */
const group = (n: number) => n.toString(16).padStart(2, '0').repeat(32);
const peer = (n: number) => `f${n.toString(16).padStart(3, '0')}`.repeat(16);

before(async () => {
  redis = await startRedis();
  state = await RedisState.connect(redis.url, { cluster: 'default', logger: pino({ level: 'silent' }) });
  dir = mkdtempSync(path.join(tmpdir(), 'fnhost-status-'));
  writeFileSync(path.join(dir, 'wrangler-like.toml'), 'name = "app"\nmain = "functions/"\n');
  await state.heartbeat({ ...idleNodeRecord(), id: 'n1', epoch: 'e', startedAt: 0 }, 60_000);
});

after(async () => {
  await state?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('fnhost status lists the groups largest first with their member counts, as a table and as JSON', async () => {
  for (let i = 0; i < 3; i++) await state.p2p.joinGroup(group(1), peer(i), 'n1');
  await state.p2p.joinGroup(group(2), peer(0), 'n1');

  const human = await cli(dir, ['status', '--redis', redis.url]);
  assert.equal(human.code, 0, human.err);
  const lines = human.out.split('\n');
  const header = lines.findIndex((l) => /^GROUP\s+MEMBERS$/.test(l));
  assert.ok(header > 0, human.out);
  assert.deepEqual(lines.slice(header + 1, header + 3), [`${group(1)}        3`, `${group(2)}        1`]);

  const json = await cli(dir, ['status', '--redis', redis.url, '--json']);
  assert.equal(json.code, 0, json.err);
  assert.deepEqual((JSON.parse(json.out) as { groups: unknown }).groups, [
    { id: group(1), size: 3 },
    { id: group(2), size: 1 },
  ]);
});

test('fnhost status shows the 20 largest groups and says how many smaller ones it left out', async () => {
  for (let n = 3; n < 25; n++) await state.p2p.joinGroup(group(n), peer(n), 'n1');
  const human = await cli(dir, ['status', '--redis', redis.url]);
  assert.equal(human.code, 0, human.err);
  assert.equal(human.out.split('\n').filter((l) => /^[0-9a-f]{64} +\d+$/.test(l)).length, 20);
  assert.match(human.out, /\n… and 4 smaller groups \(--json lists up to 1000\)\n$/);
  const json = await cli(dir, ['status', '--redis', redis.url, '--json']);
  assert.equal((JSON.parse(json.out) as { groups: unknown[] }).groups.length, 24);
});

describe('fnhost status and publications', () => {
  /** Its own cluster on the same redis-server, so the groups above are not in its output. */
  const CLUSTER = 'pubs';
  let pubs: RedisState;
  const status = (...more: string[]) =>
    cli(dir, ['status', '--redis', redis.url, '--cluster', CLUSTER, ...more]);

  before(async () => {
    pubs = await RedisState.connect(redis.url, { cluster: CLUSTER, logger: pino({ level: 'silent' }) });
    await pubs.heartbeat({ ...idleNodeRecord(), id: 'n1', epoch: 'e', startedAt: 0 }, 60_000);
  });
  after(() => pubs?.close());

  test('lists them by app then name with origin, age, players in total and per node, as a table and as JSON', async () => {
    const claim = (app: string, name: string, node: string) =>
      pubs.publications.claim({ app, name, node, publisher: peer(1) });
    await claim('live', 'desk', 'n2');
    await claim('live', 'cam', 'n1');
    await claim('chat', 'zz', 'n1');
    await pubs.publications.setSubscribers('live', 'cam', 'n2', 3);
    await pubs.publications.setSubscribers('live', 'cam', 'n1', 2);

    const human = await status();
    assert.equal(human.code, 0, human.err);
    const lines = human.out.split('\n');
    const header = lines.findIndex((l) => /^APP\s+STREAM\s+ORIGIN\s+SINCE\s+PLAYERS\s+PER NODE$/.test(l));
    assert.ok(header > 0, human.out);
    const rows = lines.slice(header + 1, header + 4);
    assert.match(rows[0], /^chat +zz +n1 +\d+\.\d s ago +0 +-$/, human.out);
    assert.match(rows[1], /^live +cam +n1 +\d+\.\d s ago +5 +n1:2 n2:3$/, human.out);
    assert.match(rows[2], /^live +desk +n2 +\d+\.\d s ago +0 +-$/, human.out);

    const json = await status('--json');
    assert.equal(json.code, 0, json.err);
    const listed = (JSON.parse(json.out) as { publications: unknown }).publications;
    assert.deepEqual(listed, await pubs.publications.list());
    assert.deepEqual(
      (listed as { name: string; node: string; nodes: unknown }[]).map((p) => [p.name, p.node, p.nodes]),
      [
        ['zz', 'n1', {}],
        ['cam', 'n1', { n1: 2, n2: 3 }],
        ['desk', 'n2', {}],
      ],
    );
  });

  test('shows the first 20 and says how many more it left out', async () => {
    for (let n = 0; n < 20; n++) {
      await pubs.publications.claim({ app: 'more', name: `s${n}`, node: 'n1', publisher: peer(2) });
    }
    const human = await status();
    assert.equal(human.code, 0, human.err);
    const shown = human.out.split('\n').filter((l) => /^(chat|live|more) /.test(l));
    assert.equal(shown.length, 20, human.out);
    assert.match(human.out, /\n… and 3 more publications \(--json lists up to 1000\)\n$/);
    const json = await status('--json');
    assert.equal((JSON.parse(json.out) as { publications: unknown[] }).publications.length, 23);
  });
});
