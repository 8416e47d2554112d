import type { NodeRecord } from '../../runtime/cluster/state.ts';

/** A serving node's record, idle, with no apps: what tests start from and override. */
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
