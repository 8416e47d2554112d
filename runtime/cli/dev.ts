import { type FSWatcher, watch } from 'node:fs';
import path from 'node:path';
import { MemoryState } from '../cluster/memory-state.ts';
import { shortHash } from '../cluster/state.ts';
import type { FnhostConfig } from '../config/config.ts';
import { errorText } from '../error-text.ts';
import { AppHost } from '../host/apps.ts';
import { NodeGroups } from '../host/groups.ts';
import { RtmfpNode } from '../host/node.ts';
import { NodeStreams } from '../host/streams.ts';
import { formatAddress } from '../rtmfp/address.ts';
import { makeServerIdentity } from '../rtmfp/handshake.ts';
import { BuildError, type Bundle, bundleApp } from '../sandbox/bundle.ts';
import { type Command, CommandError, parseOptions, printResult, usageError } from './command.ts';
import { summaryOf } from './commands.ts';
import { appFolder, commandConfig } from './config.ts';
import { makeLogger } from './logger.ts';
import { exitOnSignals } from './shutdown.ts';

/** Wait this long after the last file change before rebuilding (editors write in bursts). */
const REBUILD_DEBOUNCE_MS = 100;

/**
 * `fnhost dev [dir]`: one standalone node (memory State) running the app in `dir`, rebuilt
 * and hot-swapped on every save without dropping connected clients. A build that fails is
 * printed with file and line, and the running version stays.
 */
export const dev: Command = {
  ...summaryOf('dev'),
  flags: `  --rtmfp HOST:PORT   UDP address to listen on (repeatable; default 0.0.0.0:1935)
  --config FILE       the project config (default ./wrangler-like.toml)
  --json              log JSON lines on stderr and print JSON lines on stdout`,
  run: runDev,
};

async function runDev(argv: string[]): Promise<undefined> {
  const { values, positionals } = parseOptions(argv, {
    rtmfp: { type: 'string', multiple: true },
    config: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length > 1) throw usageError(`dev takes one app folder, got ${positionals.join(' ')}`);
  const config = commandConfig(values.config, { rtmfp: values.rtmfp, main: positionals[0] });
  const dir = appFolder(config);
  const log = makeLogger({ json: values.json });
  const first = await build(dir);
  if (first instanceof Error) throw new CommandError(first.message);

  const identity = makeServerIdentity();
  const self = {
    id: identity.fingerprint.toString('hex').slice(0, 16),
    publicAddress: config.node.publicAddress ?? '',
  };
  // The same State contract as a cluster node, in memory (DESIGN.md).
  const state = new MemoryState();
  const apps = new AppHost({
    logger: log,
    limits: config.limits,
    env: () => config.vars,
    kv: state.kv,
    node: self,
    handshakesPerSecond: config.limits.handshakes,
    groups: new NodeGroups({ p2p: state.p2p, node: () => self.id, logger: log }),
    publications: state.publications,
  });
  const streams = new NodeStreams({
    publications: state.publications,
    node: () => self.id,
    apps,
    logger: log,
  });
  await apps.load(config.name, first);
  const node = new RtmfpNode({
    listen: config.node.rtmfp,
    identity,
    logger: log,
    groupsPerClient: config.limits.groupsPerClient,
    nativePackets: config.node.nativePackets,
    streams,
    ...apps.nodeHooks(),
  });
  const bound = await node.start();
  self.publicAddress ||= formatAddress(bound[0]);
  const rtmfp = bound.map(formatAddress);
  const url = `rtmfp://${rtmfp[0]}/${config.name}`;
  printResult(
    values.json,
    `${rtmfp.map((a) => `rtmfp listening on udp://${a}\n`).join('')}app "${config.name}" from ${dir}: ${url}`,
    { app: config.name, dir, url, rtmfp },
  );

  const watcher = watchApp(config, async () => {
    const next = await build(dir);
    if (next instanceof Error) {
      process.stderr.write(
        `fnhost: ${next.message}\n  (still running version ${shortHash(apps.version(config.name))})\n`,
      );
      return;
    }
    if (next.hash === apps.version(config.name)) return;
    try {
      await apps.load(config.name, next);
      const clients = node.stats().connections;
      printResult(
        values.json,
        `reloaded "${config.name}": version ${shortHash(next.hash)}, ${clients} clients kept`,
        { reloaded: config.name, version: next.hash, clients },
      );
    } catch (e) {
      process.stderr.write(
        `fnhost: ${errorText(e)}\n  (still running version ${shortHash(apps.version(config.name))})\n`,
      );
    }
  });

  exitOnSignals({
    log,
    shutdownMs: config.node.shutdownMs,
    stop: async (step) => {
      watcher.close();
      step(`closing ${node.stats().sessions} sessions`);
      await node.stop();
      streams.close();
      step('stopping the app');
      await apps.stop();
    },
  });
}

/** Bundles the app in `dir`; a build problem comes back as an Error to print, not a throw. */
async function build(dir: string): Promise<Bundle | Error> {
  try {
    return await bundleApp(dir);
  } catch (e) {
    if (e instanceof BuildError) return new Error(`build failed:\n${e.message}`);
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** Calls `rebuild` after changes settle; one rebuild at a time, the last change always wins. */
function watchApp(config: FnhostConfig, rebuild: () => Promise<void>): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const watcher = watch(config.mainPath, { recursive: true }, (_event, file) => {
    if (file && path.basename(String(file)).startsWith('.')) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = running.then(rebuild);
    }, REBUILD_DEBOUNCE_MS);
  });
  watcher.unref();
  return watcher;
}
