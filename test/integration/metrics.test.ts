import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getMetricsFromIterator, type PromMetric, type PromMetrics } from 'prom2javascript';
import { connect } from '../../sdk/client.ts';
import { startTestCluster, type TestCluster } from '../support/test-cluster.ts';

const APP = `
import { defineApp } from 'fnhost/sdk';
export default defineApp({
  onConnection() { return {}; },
  rpc: {
    echo(_client, [value]) { return value; },
    fail() { throw new Error('boom'); },
    spin() { for (;;) {} },
  },
});
`;

/** An argument no metric may carry. */
const SECRET_ARGUMENT = 'do-not-export-this-argument';

type Labels = Record<string, string>;

/** `/metrics` parsed by a Prometheus text-format parser. */
async function scrape(http: string): Promise<PromMetrics> {
  const res = await fetch(`http://${http}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return getMetricsFromIterator((await res.text()).split('\n')[Symbol.iterator]());
}

function family(metrics: PromMetrics, name: string): PromMetric {
  const f = metrics[name];
  assert.ok(f, `metric ${name} is exported`);
  return f;
}

/** The sample of `name` whose labels include `labels` (counter/gauge value, or histogram count); 0 if none. */
function sample(metrics: PromMetrics, name: string, labels: Labels = {}): number {
  const samples = family(metrics, name).data as { labels: Labels; value?: number; count?: number }[];
  const s = samples.find((m) => Object.entries(labels).every(([k, v]) => m.labels[k] === v));
  return s?.count ?? s?.value ?? 0;
}

describe('/metrics of a node with Redis', () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startTestCluster({ nodes: 1, app: APP });
  });

  after(async () => {
    await cluster?.stop();
  });

  test('counters and histograms move when a client connects and calls; no address or argument is exported', async () => {
    const [node] = cluster.nodes;
    const before = await scrape(node.http);
    const nc = await connect(`rtmfp://${node.rtmfp}/app`);
    let during: PromMetrics;
    try {
      assert.equal(await nc.call('echo', SECRET_ARGUMENT), SECRET_ARGUMENT);
      await assert.rejects(nc.call('fail'), /boom/);
      await assert.rejects(nc.call('spin'), /CPU limit/);
      await assert.rejects(nc.call('made-up-by-the-client'), /Method not found/);
      during = await scrape(node.http);
    } finally {
      await nc.close();
    }
    const moved = (name: string, labels?: Labels) =>
      sample(during, name, labels) - sample(before, name, labels);

    assert.equal(sample(during, 'fnhost_connections'), 1);
    assert.ok(
      moved('fnhost_ihellos_total') >= 1,
      'IHellos counted (a busy machine may see a retransmission)',
    );
    assert.equal(moved('fnhost_handshakes_total'), 1);
    assert.equal(moved('fnhost_sessions_opened_total'), 1);
    assert.equal(moved('fnhost_handshake_duration_seconds'), 1, 'one handshake timed');
    for (const name of [
      'fnhost_packets_received_total',
      'fnhost_packets_sent_total',
      'fnhost_bytes_received_total',
      'fnhost_bytes_sent_total',
    ])
      assert.ok(moved(name) > 0, `${name} moved`);
    assert.equal(sample(during, 'fnhost_packets_send_failed_total'), 0, 'every datagram went out');
    assert.ok(
      sample(during, 'fnhost_bytes_received_total') > sample(during, 'fnhost_packets_received_total'),
    );

    const app = { app: 'app' };
    assert.equal(moved('fnhost_handler_duration_seconds', { ...app, event: 'connect' }), 1);
    assert.equal(
      moved('fnhost_handler_duration_seconds', { ...app, event: 'disconnect' }),
      0,
      'no handler, no sample',
    );
    assert.equal(moved('fnhost_handler_duration_seconds', { ...app, event: 'rpc.echo' }), 1);
    assert.equal(moved('fnhost_handler_errors_total', { ...app, event: 'rpc.fail' }), 1);
    assert.equal(moved('fnhost_handler_errors_total', { ...app, event: 'rpc.spin' }), 1);
    assert.equal(moved('fnhost_handler_limit_hits_total', { ...app, limit: 'cpu' }), 1);
    assert.equal(moved('fnhost_handler_errors_total', { ...app, event: 'rpc.echo' }), 0);
    assert.ok(sample(during, 'fnhost_isolate_heap_bytes', app) > 0, 'the isolate heap is reported');
    // Registration, loading the app and heartbeats went through Redis (none need fall between the scrapes).
    assert.ok(
      sample(during, 'fnhost_redis_round_trip_seconds', { result: 'ok' }) > 0,
      'Redis commands are timed',
    );
    assert.equal(family(during, 'fnhost_handler_duration_seconds').type, 'histogram');
    assert.equal(family(during, 'fnhost_packets_received_total').type, 'counter');

    const labelValues = Object.values(during).flatMap((f) =>
      (f.data as { labels: Labels }[]).flatMap((m) => Object.values(m.labels)),
    );
    assert.ok(
      !labelValues.some((v) => v.includes('made-up-by-the-client')),
      'an unknown RPC name is no label',
    );
    assert.ok(
      !labelValues.some((v) => /127\.0\.0\.1|\d+\.\d+\.\d+\.\d+:\d+/.test(v)),
      'no address in a label',
    );
    assert.ok(!labelValues.some((v) => v.includes(SECRET_ARGUMENT)), 'no handler argument in a label');
  });

  test('the dashboard is at /, the cluster at /cluster.json, and any other path is 404', async () => {
    const [node] = cluster.nodes;
    const page = await fetch(`http://${node.http}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const html = await page.text();
    assert.match(html, /<title>fnhost dashboard<\/title>/);
    assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, 'nothing loaded from elsewhere');
    const view = (await (await fetch(`http://${node.http}/cluster.json`)).json()) as {
      node: string;
      nodes: { id: string; state: string }[];
    };
    assert.equal(view.node, node.id);
    assert.deepEqual(
      view.nodes.map((n) => [n.id, n.state]),
      [[node.id, 'serving']],
    );
    for (const path of ['/nope', '/metrics/extra', '/index.html']) {
      const res = await fetch(`http://${node.http}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(await res.text(), 'not found\n');
    }
  });
});
