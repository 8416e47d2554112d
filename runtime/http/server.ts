import { createServer, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';

/** What the node's HTTP port reports. */
export interface HttpSources {
  /** Redis reachable and the pub/sub self-probe answering (true on a standalone node). */
  ready(): { ok: boolean; reason?: string };
  /** The node's status as JSON (`/status`). */
  status(): unknown;
  /** Counters and gauges for `/metrics`, Prometheus text format. */
  metrics(): Metric[];
  /** `/loadbalancer`: the least-loaded live eligible node's public address, or why there is none. */
  loadbalancer(): Promise<LoadBalancerAnswer>;
}

/** A node's public address, or why no node may take a client. */
export type LoadBalancerAnswer = { address: string } | { unavailable: string };

export interface Metric {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** One sample per label set. */
  samples: { labels?: Record<string, string>; value: number }[];
}

/**
 * `/healthz` (the process alone: never depends on Redis, so a Redis outage does not get healthy
 * nodes killed), `/readyz` (adds Redis and the pub/sub probe), `/status`, `/metrics`,
 * `/loadbalancer` (Wowza's `redirect=HOST:PORT`, `?format=json` for JSON).
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
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(`${JSON.stringify(sources.status(), null, 2)}\n`);
        return;
      case '/metrics':
        res
          .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
          .end(formatMetrics(sources.metrics()));
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

function formatMetrics(metrics: Metric[]): string {
  const lines: string[] = [];
  for (const m of metrics) {
    lines.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`);
    for (const s of m.samples) {
      const labels = s.labels
        ? `{${Object.entries(s.labels)
            .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
            .join(',')}}`
        : '';
      lines.push(`${m.name}${labels} ${s.value}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
