/**
 * After `deploy` or `rollback` flips an app's active version: wait until every live node has
 * loaded it or said why it could not (nodes report both in their heartbeat: `versions[app]`
 * and `errors[app]`, DESIGN.md "Deploy"), then tell the user where it runs.
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
 * Polls the live nodes until each runs `hash` for `app` or reports an error naming it
 * (a node's error starts with the 12-digit hash it failed to load), or until `timeoutMs`.
 * Nodes joining meanwhile are waited for too; nodes that left are no longer counted.
 */
export async function waitForVersion(
  state: State,
  app: string,
  hash: string,
  timeoutMs: number,
  startedAt: number,
): Promise<Convergence> {
  const deadline = startedAt + timeoutMs;
  for (;;) {
    const nodes = (await state.nodes()).filter((n) => n.state !== 'stopping');
    const outcomes = nodes.map((n) => outcome(n, app, hash));
    const waiting = outcomes.filter((o) => o === undefined).length;
    if (waiting === 0 || performance.now() >= deadline) {
      const seconds = (performance.now() - startedAt) / 1000;
      const final = nodes.map(
        (n, i): NodeOutcome =>
          outcomes[i] ?? {
            id: n.id,
            ok: false,
            error: `still on ${shortHash(n.versions[app])} after ${formatSeconds(timeoutMs)}`,
          },
      );
      return { nodes: final.sort((a, b) => a.id.localeCompare(b.id)), seconds };
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function outcome(n: NodeEntry, app: string, hash: string): NodeOutcome | undefined {
  if (n.versions[app] === hash) return { id: n.id, ok: true, error: null };
  const error = n.errors[app];
  if (error?.includes(shortHash(hash))) return { id: n.id, ok: false, error };
  return undefined;
}

/**
 * `<headline>: active on 3/3 nodes (0.41 s)` and one line per node that does not run it.
 * Returns the exit code: 1 unless every live node runs the version.
 */
export function printConvergence(
  headline: string,
  result: Convergence,
  json: Record<string, unknown> | undefined,
): number {
  const ok = result.nodes.filter((n) => n.ok).length;
  if (json) {
    process.stdout.write(
      `${JSON.stringify({ ...json, nodes: result.nodes, seconds: Math.round(result.seconds * 1000) / 1000 })}\n`,
    );
  } else {
    let text = `${headline}: active on ${ok}/${result.nodes.length} nodes (${result.seconds.toFixed(2)} s)\n`;
    const width = Math.max(0, ...result.nodes.map((n) => n.id.length));
    for (const n of result.nodes) {
      if (!n.ok) text += `  ${n.id.padEnd(width)}  ${indentRest(n.error ?? '', ' '.repeat(width + 4))}\n`;
    }
    process.stdout.write(text);
  }
  return ok === result.nodes.length ? 0 : 1;
}
