/**
 * `fnhost status`: the live nodes of the cluster as the store sees them — addresses, state,
 * load, which version of each app they run (and which failed to load), and how fresh their
 * last heartbeat is, by the store's clock.
 */
import { type NodeEntry, shortHash } from '../cluster/state.ts';
import { CLUSTER_HELP, formatAge, indentRest, parseClusterArgs, table, withCluster } from './cluster.ts';
import { type Command, usageError } from './command.ts';

export const status: Command = {
  name: 'status',
  synopsis: ['status [cluster options]'],
  about: 'The live nodes: addresses, state, load, app versions, last heartbeat.',
  shared: CLUSTER_HELP,
  run: showStatus,
};

async function showStatus(argv: string[]): Promise<number> {
  const { values, positionals, load } = parseClusterArgs(argv, {});
  if (positionals.length > 0) throw usageError(`status takes no arguments, got ${positionals.join(' ')}`);
  const config = load();
  return withCluster(config, 'status', async (state) => {
    const [nodes, time] = await Promise.all([state.nodes(), state.time()]);
    nodes.sort((a, b) => a.id.localeCompare(b.id));
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ time, nodes })}\n`);
      return 0;
    }
    if (nodes.length === 0) {
      process.stdout.write(`no live nodes in cluster "${config.cluster.name}"\n`);
      return 0;
    }
    process.stdout.write(
      table(
        ['ID', 'PUBLIC', 'RTMFP', 'HTTP', 'STATE', 'CLIENTS', 'CPU', 'PKT/S', 'APPS', 'PAUSED', 'HEARTBEAT'],
        nodes.map((n) => [
          n.id,
          n.publicAddress,
          n.rtmfp.join(','),
          n.http ?? '-',
          n.state,
          String(n.load.clients),
          `${Math.round(n.load.cpu * 100)}%`,
          String(Math.round(n.load.packetsPerSecond)),
          appVersions(n),
          n.paused ? 'yes' : 'no',
          formatAge(time - n.heartbeatAt),
        ]),
        [5, 6, 7],
      ),
    );
    const errors = nodes.flatMap((n) =>
      Object.entries(n.errors).map(([app, error]) => ({ id: n.id, app, error })),
    );
    if (errors.length > 0) {
      process.stdout.write('\napps that failed to load (the node keeps its previous version):\n');
      for (const e of errors) {
        const label = `  ${e.id} ${e.app}: `;
        process.stdout.write(`${label}${indentRest(e.error, ' '.repeat(label.length))}\n`);
      }
    }
    return 0;
  });
}

/** `chat@4b2a1c14c02e`, with `!` when the node failed to load the app's active version. */
function appVersions(n: NodeEntry): string {
  const apps = [...new Set([...Object.keys(n.versions), ...Object.keys(n.errors)])].sort();
  if (apps.length === 0) return '-';
  return apps
    .map((app) => `${app}@${shortHash(n.versions[app] || undefined)}${n.errors[app] ? '!' : ''}`)
    .join(' ');
}
