/**
 * After `deploy` or `rollback` flips an app's active version, or `secret` changes its secrets:
 * wait until every live node runs that version with those secrets or said why it could not
 * (nodes report it in their heartbeat: `versions[app]`, `secretRevisions[app]` and
 * `errors[app]`, DESIGN.md "Deploy"), then tell the user where it runs.
 */
import { type NodeEntry, type State, shortHash } from '../cluster/state.ts';
import { formatSeconds, indentRest } from './cluster.ts';
import { usageError } from './command.ts';

/** How often the node list is read while waiting. */
const POLL_MS = 50;
/** `--timeout` default, seconds. */
export const DEFAULT_TIMEOUT_S = 10;

/** Where one node stands with the version: `error` is null when it runs it. */
export interface NodeOutcome {
  id: string;
  ok: boolean;
  error: string | null;
}

/** What the nodes should run: the app's version, loaded with at least this secrets revision. */
export interface Target {
  hash: string;
  secretsRevision: number;
}

export interface Convergence {
  nodes: NodeOutcome[];
  /** From the flip of the active pointer until every node answered (or the timeout). */
  seconds: number;
}

/** `--timeout SECONDS` as milliseconds; a positive number or a usage error. */
export function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_TIMEOUT_S * 1000;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(seconds > 0)) {
    throw usageError(`--timeout must be a positive number of seconds, got "${text}"`);
  }
  return seconds * 1000;
}

/**
 * Tells the nodes to follow the app (channel `deploy`; a node loads the active version with
 * the current secrets unless it runs them) and waits until each runs `target` or reports an
 * error naming its version (a node's error starts with the short hash it failed to load), or
 * until `timeoutMs`. Nodes joining meanwhile are waited for too; nodes that left are not.
 */
export async function rollOut(
  state: State,
  app: string,
  target: Target,
  timeoutMs: number,
): Promise<Convergence> {
  const startedAt = performance.now();
  // Also when nothing changed: a node that missed or failed the last notice tries again.
  await state.publish('deploy', JSON.stringify({ app, ...target }));
  process.stderr.write(`waiting for the nodes (up to ${timeoutMs / 1000} s) …\n`);
  const deadline = startedAt + timeoutMs;
  for (;;) {
    const nodes = (await state.nodes()).filter((n) => n.state !== 'stopping');
    const outcomes = nodes.map((n) => outcome(n, app, target));
    const waiting = outcomes.filter((o) => o === undefined).length;
    if (waiting === 0 || performance.now() >= deadline) {
      const seconds = (performance.now() - startedAt) / 1000;
      const final = nodes.map(
        (n, i): NodeOutcome =>
          outcomes[i] ?? {
            id: n.id,
            ok: false,
            error: `${n.versions[app] === target.hash ? 'still on the previous secrets' : `still on ${shortHash(n.versions[app])}`} after ${formatSeconds(timeoutMs)}`,
          },
      );
      return { nodes: final.sort((a, b) => a.id.localeCompare(b.id)), seconds };
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function outcome(n: NodeEntry, app: string, target: Target): NodeOutcome | undefined {
  // A record from a node that does not report secret revisions counts as revision 0.
  const revision = n.secretRevisions?.[app] ?? 0;
  if (n.versions[app] === target.hash && revision >= target.secretsRevision)
    return { id: n.id, ok: true, error: null };
  const error = n.errors[app];
  if (error?.includes(shortHash(target.hash))) return { id: n.id, ok: false, error };
  return undefined;
}

/**
 * `<headline>: active on 3/3 nodes (0.41 s)` (or `live on`, for a change to the running
 * version) and one line per node that does not run it. Returns the exit code: 1 unless every
 * live node runs it.
 */
export function printConvergence(
  headline: string,
  result: Convergence,
  json: Record<string, unknown> | undefined,
  where: 'active' | 'live' = 'active',
): number {
  const ok = result.nodes.filter((n) => n.ok).length;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ ...json, nodes: result.nodes, seconds: Math.round(result.seconds * 1000) / 1000 })}\n`,
    );
  } else {
    let text = `${headline}: ${where} on ${ok}/${result.nodes.length} nodes (${result.seconds.toFixed(2)} s)\n`;
    const width = Math.max(0, ...result.nodes.map((n) => n.id.length));
    for (const n of result.nodes) {
      if (!n.ok) text += `  ${n.id.padEnd(width)}  ${indentRest(n.error ?? '', ' '.repeat(width + 4))}\n`;
    }
    process.stdout.write(text);
  }
  return ok === result.nodes.length ? 0 : 1;
}
