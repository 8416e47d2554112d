import { afterEach, beforeEach } from 'node:test';
import type { NodeRecord, State } from '../../runtime/cluster/state.ts';

/** A fresh, empty State for one test, and how to dispose of it. */
export interface StateFixture {
  state: State;
  cleanup(): Promise<void>;
}

export type MakeState = () => Promise<StateFixture>;

/** Gives each test of the enclosing describe a fresh State; returns a getter for it. */
export function useState(make: MakeState): () => State {
  let fixture: StateFixture | undefined;
  beforeEach(async () => {
    fixture = await make();
  });
  afterEach(async () => {
    await fixture?.cleanup();
    fixture = undefined;
  });
  return () => {
    if (!fixture) throw new Error('state used outside a test');
    return fixture.state;
  };
}

export function nodeRecord(id: string, o: Partial<NodeRecord> = {}): NodeRecord {
  return {
    id,
    epoch: 'epoch-1',
    state: 'serving',
    publicAddress: '203.0.113.7:1935',
    rtmfp: ['0.0.0.0:1935', '[::]:1935'],
    http: undefined,
    load: { clients: 3, cpu: 0.25, packetsPerSecond: 1200, bytesPerSecond: 96_000 },
    paused: false,
    versions: { chat: 'abc123' },
    errors: {},
    secretRevisions: {},
    startedAt: 1_700_000_000_000,
    ...o,
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `condition` every 5 ms until true; throws after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
