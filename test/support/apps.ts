import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { MemoryState } from '../../runtime/cluster/memory-state.ts';
import { AppHost } from '../../runtime/host/apps.ts';
import { NodeGroups } from '../../runtime/host/groups.ts';
import { RtmfpNode } from '../../runtime/host/node.ts';
import { NodeStreams } from '../../runtime/host/streams.ts';
import { formatAddress } from '../../runtime/rtmfp/address.ts';
import { makeServerIdentity } from '../../runtime/rtmfp/handshake.ts';
import { bundleApp } from '../../runtime/sandbox/bundle.ts';
import type { SandboxLimits } from '../../runtime/sandbox/sandbox.ts';

/** Limits for tests: the defaults of DESIGN.md "Limits and failure semantics", shorter awaits. */
export const TEST_LIMITS: SandboxLimits = { cpuMs: 50, memoryMb: 128, awaitMs: 2_000 };

/** One pino line as JSON, e.g. `{ level: 30, app, event, msg, err: { message, stack } }`. */
export type LogRecord = Record<string, unknown> & { level: number; msg: string };

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export type AppFiles = Record<string, string>;

export interface TestAppNode {
  /** `rtmfp://127.0.0.1:PORT/<app>[/path]`; `path` may carry a query. */
  url: (path?: string) => string;
  port: number;
  apps: AppHost;
  node: RtmfpNode;
  /** The node's NetGroups (in a memory store). */
  groups: NodeGroups;
  /** The node's live streams. */
  streams: NodeStreams;
  /** This node's ID in the store. */
  id: string;
  /** The app folder (a temp dir unless `{ dir }` was given). */
  dir: string;
  /** Writes `files` over the app folder, rebundles and loads the new version (rejects as `apps.load` does). */
  reload: (files: AppFiles) => Promise<void>;
  /** Every log line the node and its handlers wrote, oldest first. */
  logs: LogRecord[];
  stop: () => Promise<void>;
}

/**
 * A node on a free UDP port of 127.0.0.1 running one app, wired as `fnhost dev` wires it
 * (runtime/cli/dev.ts): memory KV, an AppHost as TC handler and onHandshake hook. App
 * sources import from 'fnhost/sdk'.
 */
export async function startAppNode(o: {
  files: AppFiles | { dir: string };
  name?: string;
  limits?: Partial<SandboxLimits>;
  vars?: Record<string, string>;
  handshakesPerSecond?: number;
  groupsPerClient?: number;
  /** A store shared with other nodes of the test (default: one of its own). */
  state?: MemoryState;
}): Promise<TestAppNode> {
  const name = o.name ?? 'app';
  const ownDir = !('dir' in o.files && typeof o.files.dir === 'string');
  const dir = ownDir ? mkdtempSync(path.join(tmpdir(), 'fnhost-app-')) : (o.files as { dir: string }).dir;
  const logs: LogRecord[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogRecord) },
  );
  const identity = makeServerIdentity();
  const self = { id: identity.fingerprint.toString('hex').slice(0, 16), publicAddress: '' };
  const state = o.state ?? new MemoryState();
  const groups = new NodeGroups({ p2p: state.p2p, node: () => self.id, logger });
  const apps = new AppHost({
    logger,
    limits: { ...TEST_LIMITS, ...o.limits },
    env: () => o.vars ?? {},
    kv: state.kv,
    node: self,
    handshakesPerSecond: o.handshakesPerSecond ?? 1000,
    groups,
    publications: state.publications,
  });
  const streams = new NodeStreams({ publications: state.publications, node: () => self.id, apps, logger });
  const node = new RtmfpNode({
    listen: [{ host: '127.0.0.1', port: 0 }],
    identity,
    handler: apps,
    handshake: (request, now) => apps.handshake(request, now),
    logger,
    cryptoWorkers: 1,
    groupsPerClient: o.groupsPerClient,
    streams,
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await node.stop();
    streams.close();
    await apps.stop();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (ownDir) writeFiles(dir, o.files as AppFiles);
    await apps.load(name, await bundleApp(dir));
    const [bound] = await node.start();
    self.publicAddress = formatAddress(bound);
    return {
      url: (p = '') => `rtmfp://${formatAddress(bound)}/${name}${p && !p.startsWith('?') ? '/' : ''}${p}`,
      port: bound.port,
      apps,
      node,
      groups,
      streams,
      id: self.id,
      dir,
      reload: async (files) => {
        writeFiles(dir, files);
        await apps.load(name, await bundleApp(dir));
      },
      logs,
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Bundles `files` (written to a temp dir, removed again) for `apps.load` of another app. */
export async function bundleFiles(files: AppFiles): Promise<Awaited<ReturnType<typeof bundleApp>>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fnhost-app-'));
  try {
    writeFiles(dir, files);
    return await bundleApp(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function writeFiles(dir: string, files: AppFiles): void {
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  }
}
