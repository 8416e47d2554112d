/**
 * `fnhost deploy [dir]`: bundle the app, prove it loads and starts in an isolate like a
 * node's, store it by content hash, flip the app's active version, tell the nodes, and wait
 * until every live node runs it or says why not (DESIGN.md "Deploy"). Nothing in the cluster
 * changes unless the bundle builds and its onStart succeeds.
 */
import path from 'node:path';
import { MemoryKv } from '../cluster/memory-kv.ts';
import { shortHash } from '../cluster/state.ts';
import type { LimitsConfig } from '../config/config.ts';
import { errorText } from '../error-text.ts';
import { BuildError, type Bundle, bundleApp } from '../sandbox/bundle.ts';
import { AppSandbox, type SandboxServices } from '../sandbox/sandbox.ts';
import { CLUSTER_HELP, clusterUrl, deployer, formatBytes, parseClusterArgs, withCluster } from './cluster.ts';
import { type Command, CommandError, usageError } from './command.ts';
import { summaryOf } from './commands.ts';
import { appFolder } from './config.ts';
import { DEFAULT_TIMEOUT_S, parseTimeout, printConvergence, rollOut } from './converge.ts';

/** The node id handlers see during the check (`ctx.node.id`). */
const CHECK_NODE_ID = 'deploy-check';
/** Log lines of the check shown when it fails (its last ones). */
const CHECK_LOG_LINES = 20;

export const deploy: Command = {
  ...summaryOf('deploy'),
  flags: `  --timeout SECONDS   how long to wait for the nodes (default ${DEFAULT_TIMEOUT_S})`,
  shared: CLUSTER_HELP,
  run: deployApp,
};

async function deployApp(argv: string[]): Promise<number> {
  const { values, positionals, load } = parseClusterArgs(argv, { timeout: { type: 'string' } });
  if (positionals.length > 1) throw usageError(`deploy takes one app folder, got ${positionals.join(' ')}`);
  const config = load(positionals[0]);
  const timeoutMs = parseTimeout(values.timeout);
  const app = config.name;
  // No cluster configured: say so before spending time on a build.
  clusterUrl(config, 'deploy');
  const dir = appFolder(config);

  progress(`bundling ${dir} …`);
  const bundle = await bundleApp(dir).catch((e: unknown) => {
    if (e instanceof BuildError) throw new CommandError(`build failed:\n${e.message}\nnothing was deployed`);
    throw e;
  });
  const short = shortHash(bundle.hash);

  return withCluster(config, 'deploy', async (state) => {
    progress(`checking ${short} (${plural(bundle.files.length, 'file')}) …`);
    // The same environment a node gives the app: [vars], then the app's secrets.
    const secrets = await state.secrets(app);
    const env = { ...config.vars, ...secrets.values };
    await checkBundle(bundle, config.limits, env, dir);

    const alreadyActive = (await state.active(app)) === bundle.hash;
    if (alreadyActive) {
      progress(`${short} is already the active version of ${app}`);
    } else {
      progress(`uploading ${formatBytes(Buffer.byteLength(bundle.code) + Buffer.byteLength(bundle.map))} …`);
      await state.putBundle(app, { hash: bundle.hash, code: bundle.code, map: bundle.map });
      progress(`activating ${app} ${short} …`);
      await state.deploy(app, {
        hash: bundle.hash,
        deployedAt: await state.time(),
        files: bundle.files,
        by: deployer(),
      });
    }
    // With the secrets the check ran with: a node still on older ones reloads.
    const target = { hash: bundle.hash, secretsRevision: secrets.revision };
    const result = await rollOut(state, app, target, timeoutMs);
    return printConvergence(
      `deployed ${app} ${short}${alreadyActive ? ' (already active)' : ''}`,
      result,
      values.json ? { app, hash: bundle.hash, alreadyActive } : undefined,
    );
  });
}

/**
 * Loads the bundle in a fresh isolate with the app's limits and environment and runs its
 * onStart, with in-memory stand-ins for the cluster: the check must not touch the real
 * store, and there are no clients or other servers yet.
 */
async function checkBundle(
  bundle: Bundle,
  limits: LimitsConfig,
  env: Record<string, string>,
  dir: string,
): Promise<void> {
  const logs: string[] = [];
  const kv = new MemoryKv();
  const self = {
    id: CHECK_NODE_ID,
    publicAddress: '',
    load: { clients: 0 },
    paused: false,
    state: 'serving',
  };
  const services: SandboxServices = {
    log: (level, event, _client, message) => void logs.push(`${level} ${event} ${message}`),
    node: () => self,
    servers: () => [],
    kv: (op, args) => {
      const [key, value, extra] = args as [string, unknown, number];
      if (op === 'get') return kv.get(CHECK_NODE_ID, key);
      if (op === 'set') return kv.set(CHECK_NODE_ID, key, value, extra);
      if (op === 'delete') return kv.delete(CHECK_NODE_ID, key);
      return kv.incr(CHECK_NODE_ID, key, Number(value));
    },
    clientCall: () => Promise.reject(new Error('no clients are connected during the deploy check')),
    clientClose: () => {},
    select: async () => ({ here: true }),
    group: async (id) => ({ id, size: 0, members: [] }),
    publication: async () => null,
    serverSend: () => {},
    serverBroadcast: () => 0,
  };
  const failed = (what: string, message: string, stack: string | undefined): CommandError => {
    const shownLogs = logs
      .slice(-CHECK_LOG_LINES)
      .map((l) => `  log: ${l}\n`)
      .join('');
    return new CommandError(
      `check failed: ${what}: ${message}\n${inAppFolder(stackFrames(stack), dir)}${shownLogs}nothing was deployed`,
    );
  };

  let sandbox: AppSandbox;
  try {
    sandbox = await AppSandbox.create(bundle, limits, env, services);
  } catch (e) {
    // create() puts the mapped stack after the first line of its message.
    const [message, ...stack] = errorText(e).split('\n');
    throw failed('the app does not load', message.replace(/^the app failed to load: /, ''), stack.join('\n'));
  }
  try {
    const outcome = await sandbox.dispatch('start', '', undefined, []);
    if (outcome.status === 'failed')
      throw failed('onStart failed', outcome.failure.message, outcome.failure.stack);
  } finally {
    sandbox.dispose();
  }
}

/**
 * The app's `at …` lines of a stack, each on its own indented line: frames past the isolate
 * boundary are the node's own, and the generated entry and the SDK are not the author's code.
 */
function stackFrames(stack: string | undefined): string {
  const lines = (stack ?? '').split('\n');
  const boundary = lines.findIndex((l) => l.includes('<isolated-vm boundary>'));
  const frames = (boundary < 0 ? lines : lines.slice(0, boundary)).filter(
    (l) => /^\s*at /.test(l) && !l.includes('fnhost:'),
  );
  return frames.map((l) => `  ${l.trim()}\n`).join('');
}

/** Stack positions are relative to the app folder (`index.ts:3:9`); show them from here. */
function inAppFolder(frames: string, dir: string): string {
  if (dir === '.') return frames;
  return frames.replace(
    /([(\s])([^\s():]+\.[cm]?[jt]sx?):(\d+)/g,
    (_m, before: string, file: string, line: string) =>
      file.startsWith('fnhost:') || path.isAbsolute(file)
        ? `${before}${file}:${line}`
        : `${before}${path.join(dir, file)}:${line}`,
  );
}

function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

function progress(line: string): void {
  process.stderr.write(`${line}\n`);
}
