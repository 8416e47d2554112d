import type { NodeEntry, NodeRecord } from '../../runtime/cluster/state.ts';

/** What an idle node serving nothing says about itself (ClusterOptions.describe). */
export function idleNodeRecord(): Omit<NodeRecord, 'id' | 'epoch' | 'startedAt'> {
  return {
    state: 'serving',
    publicAddress: '127.0.0.1:1935',
    rtmfp: [],
    http: undefined,
    load: { clients: 0, cpu: 0, packetsPerSecond: 0, bytesPerSecond: 0 },
    paused: false,
    versions: {},
    errors: {},
    secretRevisions: {},
  };
}

/** A live node as the store lists it, idle unless `o` says otherwise. */
export function nodeEntry(id: string, o: Partial<NodeEntry> = {}): NodeEntry {
  return { ...idleNodeRecord(), id, epoch: 'e', startedAt: 0, heartbeatAt: 0, ...o };
}
