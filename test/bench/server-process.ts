import { type ChildProcess, fork } from 'node:child_process';
import pino from 'pino';
import { NODE_FLAGS } from '../../runtime/cli/node-flags.ts';
import { type NodeStats, RtmfpNode } from '../../runtime/host/node.ts';
import { echoApp } from '../support/echo-app.ts';

/**
 * A benchmark server in its own process, so its CPU time (`process.cpuUsage()` counts every
 * thread, crypto workers included) and memory are measured apart from the clients driving it.
 * Run as a child (`fork`): starts an RtmfpNode with the echo app on 127.0.0.1:0, reports
 * its port, then answers requests over IPC. The parent side is `ServerProcess`.
 */

/** How long the parent waits for the child to start, answer or exit. */
const START_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 10_000;
const EXIT_TIMEOUT_MS = 5_000;
/** Time between the two GCs of a memory reading, for freed Buffers to be swept. */
const GC_SETTLE_MS = 300;

export type ServerCommand = 'cpu' | 'mem' | 'stats' | 'stop';

interface Request {
  id: number;
  cmd: ServerCommand;
}

type ChildMessage =
  | { kind: 'ready'; port: number }
  | { kind: 'reply'; id: number; value: unknown }
  | { kind: 'failed'; id: number; error: string };

/** The parent's handle on a running server process. */
export class ServerProcess {
  readonly port: number;
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private exited = false;

  private constructor(child: ChildProcess, port: number) {
    this.child = child;
    this.port = port;
    child.on('message', (m: ChildMessage) => {
      if (m.kind === 'ready') return;
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.kind === 'reply') p.resolve(m.value);
      else p.reject(new Error(`server process: ${m.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values())
        p.reject(new Error(`server process exited (code ${code}, signal ${signal})`));
      this.pending.clear();
    });
  }

  /**
   * Forks the server (with the flags a node runs with, `--expose-gc` so `mem` measures live
   * memory, and any `nodeOptions`) and waits for its port.
   */
  static start(nodeOptions: string[] = []): Promise<ServerProcess> {
    const child = fork(new URL('./server-process.ts', import.meta.url), [], {
      execArgv: [...NODE_FLAGS, '--expose-gc', ...nodeOptions],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('server process did not report its port in time'));
      }, START_TIMEOUT_MS);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`server process exited with code ${code} before it was ready`));
      });
      child.on('message', function onReady(m: ChildMessage) {
        if (m.kind !== 'ready') return;
        clearTimeout(timer);
        child.off('message', onReady);
        resolve(new ServerProcess(child, m.port));
      });
    });
  }

  /** The server's process ID (its threads' CPU can be read from /proc). */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** `rtmfp://127.0.0.1:PORT/app` */
  url(app = 'bench'): string {
    return `rtmfp://127.0.0.1:${this.port}/${app}`;
  }

  /** CPU time of the whole server process (all threads), µs. */
  cpu(): Promise<NodeJS.CpuUsage> {
    return this.request('cpu') as Promise<NodeJS.CpuUsage>;
  }

  /** Memory of the server process after a full garbage collection. */
  mem(): Promise<NodeJS.MemoryUsage> {
    return this.request('mem') as Promise<NodeJS.MemoryUsage>;
  }

  stats(): Promise<NodeStats> {
    return this.request('stats') as Promise<NodeStats>;
  }

  /** Clean shutdown (sessions closed, sockets released); kills the process if that hangs. */
  async stop(): Promise<void> {
    if (this.exited) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.request('stop').catch(() => {});
    const timer = setTimeout(() => this.child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  private request(cmd: ServerCommand): Promise<unknown> {
    if (this.exited) return Promise.reject(new Error('server process has exited'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`server process did not answer '${cmd}' in ${REQUEST_TIMEOUT_MS} ms`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd } satisfies Request);
    });
  }
}

/**
 * Memory after full GCs. V8 frees ArrayBuffer backing stores (every Buffer) concurrently after
 * a GC: measured right after one, `external` still counts megabytes of dead Buffers.
 */
async function settledMemory(): Promise<NodeJS.MemoryUsage> {
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, GC_SETTLE_MS));
  globalThis.gc?.();
  return process.memoryUsage();
}

async function serve(): Promise<void> {
  const send = (m: ChildMessage) => process.send?.(m);
  const logger = pino({ level: 'silent' });
  const node = new RtmfpNode({
    listen: [{ host: '127.0.0.1', port: 0 }],
    handler: echoApp(logger),
    logger,
  });
  const [bound] = await node.start();
  // An orphaned server would keep its port and a core busy: go when the parent goes.
  process.on('disconnect', () => process.exit(0));
  process.on('message', async ({ id, cmd }: Request) => {
    try {
      switch (cmd) {
        case 'cpu':
          send({ kind: 'reply', id, value: process.cpuUsage() });
          return;
        case 'mem':
          send({ kind: 'reply', id, value: await settledMemory() });
          return;
        case 'stats':
          send({ kind: 'reply', id, value: node.stats() });
          return;
        case 'stop':
          await node.stop();
          process.send?.({ kind: 'reply', id, value: null } satisfies ChildMessage, () => process.exit(0));
          return;
        default:
          send({ kind: 'failed', id, error: `unknown command ${String(cmd)}` });
      }
    } catch (e) {
      send({ kind: 'failed', id, error: e instanceof Error ? e.message : String(e) });
    }
  });
  send({ kind: 'ready', port: bound.port });
}

if (import.meta.main) {
  if (!process.send) throw new Error('server-process.ts runs as a forked child: use ServerProcess.start()');
  await serve();
}
