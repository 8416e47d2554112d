/**
 * `fnhost tail [app]`: stream an app's `ctx.log` lines from every node until Ctrl-C.
 *
 * Protocol (the node side is runtime/cluster/log-tap.ts). Nodes publish nothing while nobody
 * tails, so logging costs nothing then (DESIGN.md "Deploy"):
 * - A tail announces itself on channel `tail` right away and every ANNOUNCE_MS with
 *   `{"app": "<app>", "until": <ms since epoch>}`, `until` = now + ANNOUNCE_TTL_MS. A node
 *   publishes the app's lines while the latest `until` it heard is in the future, so a tail
 *   that dies stops the flow within ANNOUNCE_TTL_MS and several tails need no coordination.
 * - Each line arrives on channel `logs:<app>` as one JSON record
 *   `{time, level, node, app, event, client, msg, ...fields}`.
 * - A node sends at most a bounded number of lines per second per app; it counts the rest and
 *   then publishes `{"dropped": N, "node": "<id>"}` on the same channel.
 */
import { CLUSTER_HELP, openCluster, parseClusterArgs } from './cluster.ts';
import { type Command, usageError } from './command.ts';
import { summaryOf } from './commands.ts';

/** How often a tail renews its announcement. */
export const ANNOUNCE_MS = 2_000;
/** How long one announcement keeps nodes publishing: three renewals, so one lost message is harmless. */
export const ANNOUNCE_TTL_MS = 6_000;

export const tail: Command = {
  ...summaryOf('tail'),
  shared: CLUSTER_HELP,
  run: tailApp,
};

async function tailApp(argv: string[]): Promise<number> {
  const { values, positionals, load } = parseClusterArgs(argv, {});
  if (positionals.length > 1) throw usageError(`tail takes at most one app, got ${positionals.join(' ')}`);
  const config = load();
  const app = positionals[0] ?? config.name;
  const json = values.json === true;
  const state = await openCluster(config, 'tail');
  const deployed = await state.apps();
  if (!deployed.includes(app)) {
    // Not an error: the app may be deployed while this tail runs.
    const known = deployed.length > 0 ? `deployed: ${deployed.sort().join(', ')}` : 'none is deployed';
    process.stderr.write(
      `warning: no app "${app}" in cluster "${config.cluster.name}" (${known}); tailing it anyway\n`,
    );
  }

  const unsubscribe = await state.subscribe(`logs:${app}`, (message) => {
    process.stdout.write(json ? `${message}\n` : formatLine(message));
  });
  const announce = () =>
    state.publish('tail', JSON.stringify({ app, until: Date.now() + ANNOUNCE_TTL_MS })).catch(() => {});
  await announce();
  const timer = setInterval(announce, ANNOUNCE_MS);
  state.onStatus((s) => {
    process.stderr.write(s === 'down' ? 'lost the cluster store; reconnecting …\n' : 'reconnected\n');
    if (s === 'up') void announce();
  });
  // Listening before saying "Ctrl-C to stop": a Ctrl-C that follows the line must stop it cleanly.
  const stopped = new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  process.stderr.write(`tailing ${app} in cluster "${config.cluster.name}" (Ctrl-C to stop)\n`);
  await stopped;
  clearInterval(timer);
  await unsubscribe().catch(() => {});
  await state.close();
  return 0;
}

/** `12:00:01.234 node-ab12 INFO connect alice joined {visits: 1}`, or a dropped-lines notice. */
export function formatLine(message: string): string {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(message) as Record<string, unknown>;
  } catch {
    return `${message}\n`;
  }
  if (typeof record !== 'object' || record === null) return `${message}\n`;
  const { time, level, node, app: _app, event, msg, dropped, ...fields } = record;
  if (typeof dropped === 'number') return `… ${dropped} lines dropped on node ${String(node ?? '?')}\n`;
  const parts = [
    typeof time === 'number' ? formatLocalTime(time) : '--:--:--.---',
    String(node ?? '?'),
    String(level ?? 'info').toUpperCase(),
    String(event ?? '-'),
    String(msg ?? ''),
  ];
  const extra = Object.entries(fields).filter(([, v]) => v !== undefined);
  if (extra.length > 0) parts.push(`{${extra.map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(', ')}}`);
  return `${parts.join(' ')}\n`;
}

/** `HH:MM:SS.mmm` in local time: tail is read by a person next to a clock. */
function formatLocalTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}
