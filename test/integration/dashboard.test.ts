import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Browser, Page } from 'puppeteer-core';
import { RedisState } from '../../runtime/cluster/redis-state.ts';
import { shortHash } from '../../runtime/cluster/state.ts';
import { connect, type NetConnection } from '../../sdk/client.ts';
import { launchChromium } from '../support/chromium.ts';
import { startTestCluster, type TestCluster } from '../support/test-cluster.ts';

const APP = `
import { defineApp } from 'fnhost/sdk';
export default defineApp({ rpc: { echo(_client, [value]) { return value; } } });
`;

/** Set to a .png path to save a screenshot of the page (the README's docs/dashboard.png). */
const SCREENSHOT_ENV = 'FNHOST_DASHBOARD_SCREENSHOT';
/** Between the clients added for the screenshot, so its chart has a history to draw. */
const SCREENSHOT_STEP_MS = 3_000;
const WAIT_MS = 10_000;

interface NodeRow {
  id: string;
  state: string;
  clients: string;
}

/** The nodes table as the page shows it. */
function nodeRows(page: Page): Promise<NodeRow[]> {
  return page.$$eval('#nodes tr', (rows) =>
    rows.map((r) => ({
      id: r.getAttribute('data-node') ?? '',
      state: r.querySelector('[data-field=state]')?.textContent ?? '',
      clients: r.querySelector('[data-field=clients]')?.textContent ?? '',
    })),
  );
}

/** Waits until the page shows `what`, saying what it showed instead when it does not. */
async function until(page: Page, what: string, check: (rows: NodeRow[]) => boolean): Promise<NodeRow[]> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const rows = await nodeRows(page);
    if (check(rows)) return rows;
    if (Date.now() > deadline)
      assert.fail(
        `the dashboard did not show ${what} within ${WAIT_MS} ms; it shows ${JSON.stringify(rows)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('without Chromium, the dashboard test fails saying in one line what to install', async () => {
  await assert.rejects(launchChromium('/nonexistent/chromium'), (e: Error) => {
    assert.match(e.message, /^the dashboard test needs Chromium, .*apt-get install -y chromium.*\)$/);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
});

describe('the dashboard in headless Chromium, against 2 nodes and Redis', () => {
  let cluster: TestCluster;
  let state: RedisState;
  let browser: Browser;
  const clients: NetConnection[] = [];

  before(async () => {
    browser = await launchChromium();
    cluster = await startTestCluster({ nodes: 2, app: APP });
    state = await RedisState.connect(cluster.redis.url, {
      cluster: 'default',
      logger: pino({ level: 'silent' }),
    });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await browser?.close();
    await state?.close();
    await cluster?.stop();
  });

  test("shows both nodes serving, a client connecting to the other node, and the app's version", async () => {
    const [shown, other] = cluster.nodes;
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
    await page.goto(`http://${shown.http}/`);

    const ids = [shown.id, other.id].sort();
    const rows = await until(page, 'both nodes', (r) => r.length === 2);
    assert.deepEqual(
      rows.map((r) => r.id),
      ids,
    );
    assert.deepEqual(
      rows.map((r) => [r.state, r.clients]),
      [
        ['serving', '0'],
        ['serving', '0'],
      ],
    );

    clients.push(await connect(`rtmfp://${other.rtmfp}/app`));
    assert.equal(await clients[0].call('echo', 'hi'), 'hi');
    await until(page, `1 client on ${other.id}`, (r) =>
      r.some((row) => row.id === other.id && row.clients === '1'),
    );
    const after = await nodeRows(page);
    assert.equal(after.find((r) => r.id === shown.id)?.clients, '0', 'the node serving the page has none');

    const active = await state.active('app');
    const apps = await page.$$eval('#apps tr', (trs) =>
      // No DOM types in this project (lib es2024): what is read of a cell, spelled out.
      trs.map((tr) =>
        Array.from(tr.querySelectorAll('td') as Iterable<{ textContent: string }>, (td) => td.textContent),
      ),
    );
    assert.deepEqual(apps, [['app', shortHash(active), '2 of 2 nodes']]);
    assert.equal(await page.$$eval('#chart polyline', (lines) => lines.length), 2, 'one load line per node');
    for (const empty of ['#groups-empty', '#publications-empty'])
      assert.equal(await page.$eval(empty, (e) => e.hasAttribute('hidden')), false, `${empty} says none`);

    // Members of one group on both nodes, as the nodes register them: the page lists the group.
    const group = 'ab'.repeat(32);
    await state.p2p.joinGroup(group, 'cd'.repeat(32), shown.id);
    await state.p2p.joinGroup(group, 'ef'.repeat(32), other.id);
    const groupItems = () => page.$$eval('#groups li', (items) => items.map((li) => li.textContent));
    const listed = `${group}: 2 members`;
    for (let waited = 0; waited < WAIT_MS && (await groupItems()).join() !== listed; waited += 100) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(await groupItems(), [listed]);
    assert.equal(await page.$eval('#groups-empty', (e) => e.hasAttribute('hidden')), true);

    // A stream published on the other node, with players on both: the page lists it with its
    // origin and the players per node (nothing publishes yet: seeded as a node would record it).
    await state.publications.claim({ app: 'app', name: 'cam 1', node: other.id, publisher: 'ab'.repeat(32) });
    await state.publications.setSubscribers('app', 'cam 1', shown.id, 2);
    await state.publications.setSubscribers('app', 'cam 1', other.id, 3);
    const publicationRows = () =>
      page.$$eval('#publications tr', (trs) =>
        trs.map((tr) =>
          Array.from(tr.querySelectorAll('td') as Iterable<{ textContent: string }>, (td) => td.textContent),
        ),
      );
    const perNode = [shown.id, other.id]
      .sort()
      .map((id) => `${id.slice(0, 16)}: ${id === shown.id ? 2 : 3}`)
      .join(', ');
    const expected = [['app', 'cam 1', other.id.slice(0, 16), '5', perNode]];
    for (
      let waited = 0;
      waited < WAIT_MS && JSON.stringify(await publicationRows()) !== JSON.stringify(expected);
      waited += 100
    ) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(await publicationRows(), expected);
    const json = (await (await fetch(`http://${shown.http}/cluster.json`)).json()) as {
      publications: unknown;
    };
    assert.deepEqual(json.publications, await state.publications.list(), '/cluster.json carries them whole');
    assert.equal(await page.$eval('#publications-empty', (e) => e.hasAttribute('hidden')), true);

    const screenshot = process.env[SCREENSHOT_ENV];
    if (screenshot) {
      await page.setViewport({ width: 1100, height: 900 });
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, SCREENSHOT_STEP_MS));
        clients.push(await connect(`rtmfp://${(i % 3 ? shown : other).rtmfp}/app`));
      }
      await new Promise((r) => setTimeout(r, SCREENSHOT_STEP_MS));
      await page.screenshot({ path: screenshot as `${string}.png`, fullPage: true });
    }
    assert.deepEqual(problems, [], 'no script error, no failed request');
  });
});
