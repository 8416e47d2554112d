/**
 * `fnhost status`: the live nodes of the cluster as the store sees them — addresses, state,
 * load, which version of each app they run (and which failed to load), and how fresh their
 * last heartbeat is, by the store's clock — then its NetGroups with their sizes, then its live
 * publications with their origin node and players per node.
 */
import { type GroupSummary, MAX_GROUPS_LISTED } from '../cluster/p2p.ts';
import { MAX_PUBLICATIONS_LISTED, type PublicationInfo } from '../cluster/publications.ts';
import { type NodeEntry, type State, shortHash } from '../cluster/state.ts';
import {
  CLUSTER_HELP,
  formatAge,
  formatBytes,
  indentRest,
  parseClusterArgs,
  table,
  withCluster,
} from './cluster.ts';
import { type Command, usageError } from './command.ts';
import { summaryOf } from './commands.ts';

export const status: Command = {
  ...summaryOf('status'),
  flags: `  --watch   refresh every second until Ctrl-C (in place; with --json, one line per refresh)`,
  shared: CLUSTER_HELP,
  run: showStatus,
};

/** How often `--watch` reads the nodes again. */
const WATCH_MS = 1_000;
/** Groups a person sees, largest first; `--json` lists as many as the store returns at once. */
const GROUPS_SHOWN = 20;
/** Publications a person sees, by app then name; `--json` lists as many as the store returns at once. */
const PUBLICATIONS_SHOWN = 20;
/** Cursor home and clear screen: a terminal redraws the table in place. */
const CLEAR_SCREEN = '\x1b[H\x1b[2J';

async function showStatus(argv: string[]): Promise<number> {
  const { values, positionals, load } = parseClusterArgs(argv, { watch: { type: 'boolean' } });
  if (positionals.length > 0) throw usageError(`status takes no arguments, got ${positionals.join(' ')}`);
  const config = load();
  return withCluster(config, 'status', async (state) => {
    if (!values.watch) {
      process.stdout.write(await snapshot(state, config.cluster.name, values.json));
      return 0;
    }
    // Ctrl-C ends the watch: the store is closed by withCluster, the exit code is 0.
    const stopped = new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    const inPlace = !values.json && process.stdout.isTTY;
    for (;;) {
      const text = await snapshot(state, config.cluster.name, values.json);
      process.stdout.write(inPlace ? `${CLEAR_SCREEN}${text}` : values.json ? text : `${text}\n`);
      const next = new Promise((r) => setTimeout(r, WATCH_MS, 'tick'));
      if ((await Promise.race([next, stopped])) !== 'tick') return 0;
    }
  });
}

/** The nodes, groups and publications as of now: tables for people, or one JSON line. */
async function snapshot(state: State, cluster: string, json: boolean | undefined): Promise<string> {
  const [nodes, time, groups, publications] = await Promise.all([
    state.nodes(),
    state.time(),
    state.p2p.groups(),
    state.publications.list(),
  ]);
  nodes.sort((a, b) => a.id.localeCompare(b.id));
  if (json) return `${JSON.stringify({ time, nodes, groups, publications })}\n`;
  const lists = groupsTable(groups) + publicationsTable(publications, time);
  if (nodes.length === 0) return `no live nodes in cluster "${cluster}"\n${lists}`;
  let text = table(
    [
      'ID',
      'PUBLIC',
      'RTMFP',
      'HTTP',
      'STATE',
      'CLIENTS',
      'CPU',
      'PKT/S',
      'BYTES/S',
      'APPS',
      'PAUSED',
      'HEARTBEAT',
    ],
    nodes.map((n) => [
      n.id,
      n.publicAddress,
      n.rtmfp.join(','),
      n.http ?? '-',
      n.state,
      String(n.load.clients),
      `${Math.round(n.load.cpu * 100)}%`,
      String(Math.round(n.load.packetsPerSecond)),
      `${formatBytes(Math.round(n.load.bytesPerSecond))}/s`,
      appVersions(n),
      n.paused ? 'yes' : 'no',
      formatAge(time - n.heartbeatAt),
    ]),
    [5, 6, 7, 8],
  );
  const errors = nodes.flatMap((n) =>
    Object.entries(n.errors).map(([app, error]) => ({ id: n.id, app, error })),
  );
  if (errors.length > 0) {
    text += '\napps that failed to load (the node keeps its previous version):\n';
    for (const e of errors) {
      const label = `  ${e.id} ${e.app}: `;
      text += `${label}${indentRest(e.error, ' '.repeat(label.length))}\n`;
    }
  }
  return text + lists;
}

/** The largest groups and their member counts across the cluster; nothing when there are none. */
function groupsTable(groups: GroupSummary[]): string {
  if (groups.length === 0) return '';
  const shown = groups.slice(0, GROUPS_SHOWN);
  let text = `\n${table(
    ['GROUP', 'MEMBERS'],
    shown.map((g) => [g.id, String(g.size)]),
    [1],
  )}`;
  const more = groups.length - shown.length;
  if (more > 0) {
    const atLeast = groups.length === MAX_GROUPS_LISTED ? ' or more' : '';
    text += `… and ${more}${atLeast} smaller groups (--json lists up to ${MAX_GROUPS_LISTED})\n`;
  }
  return text;
}

/**
 * Live publications by app then name: the origin node, how long ago it was claimed (store
 * clock), the players across the cluster and on each node; nothing when there are none.
 */
function publicationsTable(publications: PublicationInfo[], time: number): string {
  if (publications.length === 0) return '';
  const shown = publications.slice(0, PUBLICATIONS_SHOWN);
  let text = `\n${table(
    ['APP', 'STREAM', 'ORIGIN', 'SINCE', 'PLAYERS', 'PER NODE'],
    shown.map((p) => [
      p.app,
      p.name,
      p.node,
      formatAge(time - p.since),
      String(p.subscribers),
      Object.entries(p.nodes)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([node, n]) => `${node}:${n}`)
        .join(' ') || '-',
    ]),
    [4],
  )}`;
  const more = publications.length - shown.length;
  if (more > 0) {
    const atLeast = publications.length === MAX_PUBLICATIONS_LISTED ? ' or more' : '';
    text += `… and ${more}${atLeast} more publications (--json lists up to ${MAX_PUBLICATIONS_LISTED})\n`;
  }
  return text;
}

/** `chat@4b2a1c14c02e`, with `!` when the node failed to load the app's active version. */
function appVersions(n: NodeEntry): string {
  const apps = [...new Set([...Object.keys(n.versions), ...Object.keys(n.errors)])].sort();
  if (apps.length === 0) return '-';
  return apps
    .map((app) => `${app}@${shortHash(n.versions[app] || undefined)}${n.errors[app] ? '!' : ''}`)
    .join(' ');
}
