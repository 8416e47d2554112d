/**
 * `fnhost pause NODE`, `fnhost resume NODE`, `fnhost drain NODE [--deadline 10m]`: an
 * operator's command to one node, sent as a message signed with the cluster's secret on the
 * node's channel (`rpc:<id>`, as node-to-node messages go), repeated until the node's record
 * shows the new state, which is then printed. The node's local state is the truth: it keeps it
 * across a Redis reconnect.
 */
import { randomUUID } from 'node:crypto';
import type { ParseArgsOptionsConfig } from 'node:util';
import { messageSecret, sealMessage } from '../cluster/cluster.ts';
import type { NodeEntry, State } from '../cluster/state.ts';
import type { FnhostConfig } from '../config/config.ts';
import { CLUSTER_HELP, formatSeconds, parseClusterArgs, withCluster } from './cluster.ts';
import { type Command, CommandError, printResult, usageError } from './command.ts';
import { summaryOf } from './commands.ts';
import { DEFAULT_TIMEOUT_S, parseTimeout } from './converge.ts';

type Action = 'pause' | 'resume' | 'drain';

/** `--deadline` default: how long a draining node keeps its clients before redirecting them. */
const DEFAULT_DEADLINE = '10m';
/** How often the node list is read while waiting for the node to confirm. */
const POLL_MS = 50;
/** The command is sent again this often until confirmed (pub/sub delivers at most once). */
const RESEND_MS = 1_000;
const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

const TIMEOUT_FLAG = `  --timeout SECONDS   how long to wait for the node to confirm (default ${DEFAULT_TIMEOUT_S})`;

export const pause: Command = {
  ...summaryOf('pause'),
  flags: TIMEOUT_FLAG,
  shared: CLUSTER_HELP,
  run: (argv) => command(argv, 'pause'),
};

export const resume: Command = {
  ...summaryOf('resume'),
  flags: TIMEOUT_FLAG,
  shared: CLUSTER_HELP,
  run: (argv) => command(argv, 'resume'),
};

export const drain: Command = {
  ...summaryOf('drain'),
  flags: `  --deadline DURATION  how long clients may stay, e.g. 30s, 10m, 1h (default ${DEFAULT_DEADLINE})
${TIMEOUT_FLAG}`,
  shared: CLUSTER_HELP,
  run: (argv) => command(argv, 'drain'),
};

/** How the confirmation names the node's new state. */
const CONFIRMED_AS: Record<Action, string> = { pause: 'paused', resume: 'serving', drain: 'draining' };

/** What the node's record shows once the command took effect. */
const CONFIRMED: Record<Action, (n: NodeEntry) => boolean> = {
  pause: (n) => n.paused,
  resume: (n) => !n.paused && n.state === 'serving',
  drain: (n) => n.state === 'draining',
};

async function command(argv: string[], action: Action): Promise<number> {
  const options: ParseArgsOptionsConfig =
    action === 'drain' ? { timeout: STRING, deadline: STRING } : { timeout: STRING };
  const { values, positionals, load } = parseClusterArgs(argv, options);
  const flags = values as { timeout?: string; deadline?: string; json?: boolean };
  if (positionals.length !== 1) throw usageError(`${action} takes one NODE, got ${positionals.length}`);
  const deadlineMs = action === 'drain' ? parseDuration(flags.deadline ?? DEFAULT_DEADLINE) : undefined;
  const timeoutMs = parseTimeout(flags.timeout);
  const config = load();
  return withCluster(config, action, async (state) => {
    const target = findNode(await state.nodes(), positionals[0], config.cluster.name);
    if (target.state === 'stopping') throw new CommandError(`node ${target.id} is stopping`);
    const request = randomUUID();
    const args = deadlineMs === undefined ? [] : [deadlineMs, request];
    const sentAt = performance.now();
    const node = await untilConfirmed(state, config, target.id, action, args, timeoutMs);
    const seconds = (performance.now() - sentAt) / 1000;
    const record: Record<string, unknown> = {
      node: node.id,
      state: node.state,
      paused: node.paused,
      clients: node.load.clients,
      seconds: Math.round(seconds * 1000) / 1000,
    };
    if (deadlineMs !== undefined) record.deadline = new Date(Date.now() + deadlineMs).toISOString();
    printResult(flags.json, confirmation(action, node, seconds, deadlineMs), record);
    return 0;
  });
}

const STRING = { type: 'string' } as const;

/** What the node now does, as the operator reads it: `node ID paused in 0.02 s: …`. */
function confirmation(action: Action, node: NodeEntry, seconds: number, deadlineMs = 0): string {
  const clients = `${node.load.clients} client${node.load.clients === 1 ? '' : 's'}`;
  const done = `node ${node.id} ${CONFIRMED_AS[action]} in ${seconds.toFixed(2)} s`;
  if (action === 'pause')
    return `${done}: balancing sends it no new clients; its ${clients} stay (fnhost resume ${node.id} undoes it)`;
  if (action === 'resume') return `${done}: balanced again (${clients})`;
  const at = new Date(Date.now() + deadlineMs).toLocaleTimeString();
  return `${done}: new handshakes go to other nodes; clients still connected at ${at} (in ${formatDuration(deadlineMs)}; ${clients} now) are redirected, then it exits (fnhost resume ${node.id} cancels)`;
}

/** The live node `prefix` names: its whole id, or the start of exactly one id. */
export function findNode(nodes: NodeEntry[], prefix: string, cluster: string): NodeEntry {
  const exact = nodes.find((n) => n.id === prefix);
  if (exact) return exact;
  const matches = nodes.filter((n) => n.id.startsWith(prefix));
  if (matches.length === 1) return matches[0];
  if (matches.length === 0)
    throw new CommandError(`no live node "${prefix}" in cluster "${cluster}" (fnhost status lists them)`);
  const ids = matches.map((n) => n.id).sort();
  throw new CommandError(
    `"${prefix}" matches ${matches.length} nodes (${ids.join(', ')}); give more of the id`,
  );
}

/**
 * Sends the command (again every RESEND_MS: a message published while the node resubscribes
 * is lost) until the node's record shows it took effect; the record then.
 */
async function untilConfirmed(
  state: State,
  config: FnhostConfig,
  id: string,
  action: Action,
  args: unknown[],
  timeoutMs: number,
): Promise<NodeEntry> {
  const secret = await messageSecret(state, config.cluster.secret);
  const epoch = randomUUID();
  const send = () =>
    state.publish(
      `rpc:${id}`,
      sealMessage(secret, { kind: 'control', from: 'cli', epoch, to: id, app: '', name: action, args }),
    );
  const startedAt = performance.now();
  let sentAt = -Infinity;
  for (;;) {
    const now = performance.now();
    if (now - sentAt >= RESEND_MS) {
      await send();
      sentAt = now;
    }
    const node = (await state.nodes()).find((n) => n.id === id);
    if (!node) throw new CommandError(`node ${id} left the cluster before confirming ${action}`);
    if (CONFIRMED[action](node)) return node;
    if (now - startedAt >= timeoutMs) {
      throw new CommandError(
        `node ${id} did not confirm ${action} within ${formatSeconds(timeoutMs)} (its state: ${node.state}${node.paused ? ', paused' : ''}); is its Redis pub/sub working? (its /readyz says)`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** `30s`, `10m`, `1h`, `500ms`, `1.5m` as milliseconds; a positive duration with a unit, or a usage error. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text);
  const ms = m ? Math.round(Number(m[1]) * DURATION_UNITS_MS[m[2]]) : 0;
  if (!(ms > 0)) throw usageError(`--deadline must be a duration such as 30s, 10m or 1h, got "${text}"`);
  return ms;
}

/** `10 min`, `30 s`, `1.5 h`: how a deadline is told back. */
function formatDuration(ms: number): string {
  if (ms < 60_000) return `${ms / 1000} s`;
  if (ms < 3_600_000) return `${Math.round((ms / 60_000) * 10) / 10} min`;
  return `${Math.round((ms / 3_600_000) * 10) / 10} h`;
}
