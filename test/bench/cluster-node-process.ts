import { type ChildProcess, fork } from 'node:child_process';
import pino from 'pino';
import { NODE_FLAGS } from '../../runtime/cli/node-flags.ts';
import { parseConfig } from '../../runtime/config/config.ts';
import { startClusterMember } from '../support/cluster-member.ts';

/**
 * A cluster node (`fnhost node` minus the CLI) in its own process, for benchmarks that
 * measure a node's CPU apart from the clients driving it: forked by ClusterNodeProcess with
 * the Redis URL and the config text, it reports its RTMFP and HTTP addresses, then answers
 * `cpu` and `stop` over IPC.
 */

export interface ClusterNodeReady {
  kind: 'ready';
  rtmfp: string;
  http: string;
}

type Message = ClusterNodeReady | { kind: 'cpu'; value: NodeJS.CpuUsage };

/** How long the parent waits for the child to start or answer. */
const TIMEOUT_MS = 20_000;

/** The parent's handle. */
export class ClusterNodeProcess {
  private readonly child: ChildProcess;
  readonly rtmfp: string;
  readonly http: string;

  private constructor(child: ChildProcess, rtmfp: string, http: string) {
    this.child = child;
    this.rtmfp = rtmfp;
    this.http = http;
  }

  static async start(redisUrl: string, configText: string): Promise<ClusterNodeProcess> {
    const child = fork(new URL(import.meta.url), [], {
      env: { ...process.env, BENCH_REDIS: redisUrl, BENCH_CONFIG: configText },
      execArgv: [...NODE_FLAGS],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const ready = await new Promise<ClusterNodeReady>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the cluster node did not start in time')), TIMEOUT_MS);
      child.once('exit', (code) =>
        reject(new Error(`the cluster node exited (${code}) before it was ready`)),
      );
      child.on('message', (m: Message) => {
        if (m.kind !== 'ready') return;
        clearTimeout(timer);
        resolve(m);
      });
    });
    return new ClusterNodeProcess(child, ready.rtmfp, ready.http);
  }

  /** CPU time of the whole node process (all threads), µs. */
  cpu(): Promise<NodeJS.CpuUsage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error('the cluster node did not report its CPU')),
        TIMEOUT_MS,
      );
      const onMessage = (m: Message) => {
        if (m.kind !== 'cpu') return;
        clearTimeout(timer);
        this.child.off('message', onMessage);
        resolve(m.value);
      };
      this.child.on('message', onMessage);
      this.child.send('cpu');
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.send('stop');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

async function serve(): Promise<void> {
  const logger = pino({ level: 'silent' });
  const config = parseConfig(process.env.BENCH_CONFIG ?? '', { dir: process.cwd(), env: {} });
  const member = await startClusterMember(config, process.env.BENCH_REDIS ?? '', logger);
  process.on('disconnect', () => process.exit(0));
  process.on('message', async (m: string) => {
    if (m === 'cpu') process.send?.({ kind: 'cpu', value: process.cpuUsage() } satisfies Message);
    if (m === 'stop') {
      await member.stop();
      process.exit(0);
    }
  });
  process.send?.({ kind: 'ready', rtmfp: member.running.rtmfp[0], http: member.http } satisfies Message);
}

if (import.meta.main) await serve();
