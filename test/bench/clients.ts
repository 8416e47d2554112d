import { performance } from 'node:perf_hooks';
import { NetConnection } from '../../sdk/client.ts';
import type { ServerProcess } from './server-process.ts';

/** What run.ts hands each benchmark: progress output and servers it stops afterwards, whatever happens. */
export interface BenchContext {
  progress(message: string): void;
  /** A server in a child process; `nodeOptions` are extra Node flags for it. */
  startServer(nodeOptions?: string[]): Promise<ServerProcess>;
}

/** Opens `count` sessions at once in DH `group`; throws (after closing the ones that opened) unless all did. */
export async function openSessions(
  url: string,
  count: number,
  group: number,
  timeoutMs: number,
): Promise<NetConnection[]> {
  const results = await Promise.allSettled(
    Array.from({ length: count }, () => NetConnection.open(url, { groups: [group], timeoutMs })),
  );
  const opened = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failures = results.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  if (failures.length > 0) {
    await closeSessions(opened);
    const first = failures[0] instanceof Error ? failures[0].message : String(failures[0]);
    throw new Error(`${failures.length} of ${count} opens failed (first: ${first})`);
  }
  return opened;
}

/** Closes every connection gracefully (each waits for the server's Close Ack, at most 2 s). */
export async function closeSessions(conns: NetConnection[]): Promise<void> {
  await Promise.allSettled(conns.map((nc) => nc.close()));
}

/** Opens and closes `count` sessions one after another (JIT and crypto-worker warm-up). */
export async function warmUp(url: string, group: number, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const nc = await NetConnection.open(url, { groups: [group], timeoutMs: 10_000 });
    await nc.close();
  }
}

/** User + system CPU between two `process.cpuUsage()` readings, in ms. */
export function cpuMs(before: NodeJS.CpuUsage, after: NodeJS.CpuUsage): number {
  return (after.user - before.user + after.system - before.system) / 1000;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Milliseconds since `start` (a performance.now() reading). */
export function since(start: number): number {
  return performance.now() - start;
}
