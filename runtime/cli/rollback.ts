/**
 * `fnhost rollback [version]`: make an earlier version of the app active again — the one
 * named by a hash prefix, or the one deployed before the active one — tell the nodes, and
 * wait for them like `deploy` does. The history itself is not changed.
 */
import { shortHash, type VersionInfo } from '../cluster/state.ts';
import { CLUSTER_HELP, parseClusterArgs, withCluster } from './cluster.ts';
import { type Command, CommandError, usageError } from './command.ts';
import { summaryOf } from './commands.ts';
import { DEFAULT_TIMEOUT_S, parseTimeout, printConvergence, rollOut } from './converge.ts';

/** Shorter prefixes are too easy to mistype into another version. */
export const MIN_PREFIX = 6;
const PREFIX = new RegExp(`^[0-9a-f]{${MIN_PREFIX},64}$`);

export const rollback: Command = {
  ...summaryOf('rollback'),
  flags: `  --timeout SECONDS   how long to wait for the nodes (default ${DEFAULT_TIMEOUT_S})`,
  shared: CLUSTER_HELP,
  run: rollbackApp,
};

async function rollbackApp(argv: string[]): Promise<number> {
  const { values, positionals, load } = parseClusterArgs(argv, { timeout: { type: 'string' } });
  if (positionals.length > 1)
    throw usageError(`rollback takes at most one version, got ${positionals.join(' ')}`);
  const wanted = positionals[0]?.toLowerCase();
  if (wanted !== undefined && !PREFIX.test(wanted)) {
    throw usageError(
      `a version is a hash prefix of at least ${MIN_PREFIX} hex digits, got "${positionals[0]}"`,
    );
  }
  const timeoutMs = parseTimeout(values.timeout);
  const config = load();
  const app = config.name;
  return withCluster(config, 'rollback', async (state) => {
    const [history, active] = await Promise.all([state.versions(app), state.active(app)]);
    if (history.length === 0)
      throw new CommandError(`no versions of ${app} in cluster "${config.cluster.name}"`);
    const target = wanted ? byPrefix(history, wanted) : before(history, active);
    const alreadyActive = target === active;
    if (alreadyActive) {
      process.stderr.write(`${shortHash(target)} is already the active version of ${app}\n`);
    } else if (!(await state.activate(app, target))) {
      throw new CommandError(
        `version ${shortHash(target)} of ${app} left the history meanwhile; nothing changed`,
      );
    }
    const { revision } = await state.secrets(app);
    const result = await rollOut(state, app, { hash: target, secretsRevision: revision }, timeoutMs);
    return printConvergence(
      `rolled back ${app} to ${shortHash(target)}${alreadyActive ? ' (already active)' : ''}`,
      result,
      values.json ? { app, hash: target, alreadyActive } : undefined,
    );
  });
}

function byPrefix(history: VersionInfo[], prefix: string): string {
  const hashes = [...new Set(history.map((v) => v.hash).filter((h) => h.startsWith(prefix)))];
  if (hashes.length === 1) return hashes[0];
  if (hashes.length === 0) throw new CommandError(`no version starting with ${prefix} (see fnhost versions)`);
  throw new CommandError(`${prefix} is ambiguous: ${hashes.map(shortHash).join(', ')}; give more digits`);
}

/** The newest version deployed before the active one (and different from it). */
function before(history: VersionInfo[], active: string | undefined): string {
  const at = history.findIndex((v) => v.hash === active);
  if (at < 0)
    throw new CommandError(`the active version ${shortHash(active)} is not in the history; name one`);
  const earlier = history.slice(at + 1).find((v) => v.hash !== active);
  if (!earlier) throw new CommandError(`no version before ${shortHash(active)} to roll back to`);
  return earlier.hash;
}
