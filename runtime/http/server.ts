import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { DASHBOARD_HTML } from './dashboard.ts';

/** What the node's HTTP port reports. */
export interface HttpSources {
  /** Redis reachable and the pub/sub self-probe answering (true on a standalone node). */
  ready(): { ok: boolean; reason?: string };
  /** The node's status as JSON (`/status`). */
  status(): unknown;
  /** The cluster as the dashboard draws it (`/cluster.json`); its groups and publications are read from the store. */
  cluster(): Promise<unknown>;
  /** `/metrics`: the Prometheus text exposition and its content type. */
  metrics(): Promise<MetricsText>;
  /** `/loadbalancer`: the least-loaded live eligible node's public address, or why there is none. */
  loadbalancer(): Promise<LoadBalancerAnswer>;
}

/** What the HTTP port says until the node runs: alive, not ready, and why. */
export function waitingSources(why: string): HttpSources {
  return {
    ready: () => ({ ok: false, reason: why }),
    status: () => ({ state: 'starting', waiting: why }),
    cluster: async () => ({
      state: 'starting',
      waiting: why,
      nodes: [],
      apps: {},
      groups: [],
      publications: [],
    }),
    metrics: async () => ({ contentType: 'text/plain; version=0.0.4; charset=utf-8', text: '' }),
    loadbalancer: async () => ({ unavailable: `this node is not serving yet: ${why}` }),
  };
}

/** Sources that answer from whatever `current()` is at each request (the port opens before the node runs). */
export function forwardingSources(current: () => HttpSources): HttpSources {
  return {
    ready: () => current().ready(),
    status: () => current().status(),
    cluster: () => current().cluster(),
    metrics: () => current().metrics(),
    loadbalancer: () => current().loadbalancer(),
  };
}

/** A node's public address, or why no node may take a client. */
export type LoadBalancerAnswer = { address: string } | { unavailable: string };

export interface MetricsText {
  contentType: string;
  text: string;
}

/**
 * `/healthz` (the process alone: never depends on Redis, so a Redis outage does not get healthy
 * nodes killed), `/readyz` (adds Redis and the pub/sub probe), `/status`, `/metrics`,
 * `/loadbalancer` (Wowza's `redirect=HOST:PORT`, `?format=json` for JSON), and the dashboard:
 * `/` (one page, no outside resources) drawing `/cluster.json`.
 */
export async function startHttp(
  host: string,
  port: number,
  sources: HttpSources,
  log: Logger,
): Promise<Server> {
  const server = createServer((req, res) => {
    const [path, query = ''] = (req.url ?? '/').split('?');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    switch (path) {
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      case '/readyz': {
        const r = sources.ready();
        res
          .writeHead(r.ok ? 200 : 503, { 'content-type': 'text/plain' })
          .end(r.ok ? 'ready\n' : `not ready: ${r.reason}\n`);
        return;
      }
      case '/status':
        sendJson(res, sources.status());
        return;
      case '/cluster.json':
        sources.cluster().then(
          (view) => sendJson(res, view),
          (err: unknown) => {
            log.error({ err }, 'building the cluster view failed');
            res.writeHead(500, { 'content-type': 'text/plain' }).end('building the cluster view failed\n');
          },
        );
        return;
      case '/metrics':
        sources.metrics().then(
          (m) => res.writeHead(200, { 'content-type': m.contentType }).end(m.text),
          (err: unknown) => {
            log.error({ err }, 'collecting metrics failed');
            res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n');
          },
        );
        return;
      case '/':
        res
          .writeHead(200, {
            'content-type': 'text/html; charset=utf-8',
            // The page loads nothing from elsewhere; say so to the browser too.
            'content-security-policy':
              "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
          })
          .end(DASHBOARD_HTML);
        return;
      case '/loadbalancer':
        void loadbalancer(sources, new URLSearchParams(query).get('format') === 'json', res, log);
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  server.on('clientError', (_err, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  log.debug({ host, port }, 'http listening');
  return server;
}

function sendJson(res: ServerResponse, value: unknown): void {
  res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(value, null, 2)}\n`);
}

/** Answers `/loadbalancer`; 503 with the reason when no node may take a client. */
async function loadbalancer(sources: HttpSources, json: boolean, res: ServerResponse, log: Logger) {
  let answer: LoadBalancerAnswer;
  try {
    answer = await sources.loadbalancer();
  } catch (e) {
    log.error({ err: e }, '/loadbalancer failed');
    answer = { unavailable: 'the balancer failed; see the node log' };
  }
  const [status, text, fields] =
    'address' in answer
      ? [200, `redirect=${answer.address}`, { redirect: answer.address }]
      : [503, `no node available: ${answer.unavailable}`, { error: answer.unavailable }];
  res
    .writeHead(status, {
      'content-type': json ? 'application/json' : 'text/plain',
      'cache-control': 'no-store',
    })
    .end(`${json ? JSON.stringify(fields) : text}\n`);
}
