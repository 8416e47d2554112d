import { encodeUserControl, TCMessageType, UserControlEvent } from './tc-message.ts';

/** A Flow Sync barrier as it was read: wait until `count` flows of the stream delivered `syncId`. */
export interface FlowSync {
  syncId: number;
  count: number;
}

/**
 * A barrier not met within this long releases its held flows: the flows of a stream are each
 * reliable, so this only bounds a peer that announced more flows than it wrote the barrier on.
 */
export const FLOW_SYNC_HOLD_MS = 3_000;
/** Messages held across one stream's flows before every barrier is released (memory bound). */
export const FLOW_SYNC_MAX_HELD = 4_096;

/**
 * How a receiver asks its host for a wake-up, runtime/rtmfp having no timers of its own: the
 * host runs `service(now)` once its clock (the one its sessions run on, EndpointClock.at) reaches
 * `at`, however quiet the flows are.
 */
export type WakeAt = (at: number, service: (now: number) => void) => void;

/** `type · ts32 · event u16 · syncId u32 · count u32` (RFC 7425 §5.2). */
const FLOW_SYNC_LENGTH = 15;
const EVENT_OFFSET = 5;

/** The Flow Sync User Control message (RFC 7425 §5.2; RTMFP-NOTES §5.4): timestamp 0, as tcserver. */
export function encodeFlowSync(syncId: number, count: number): Buffer {
  return encodeUserControl(UserControlEvent.flowSync, syncId, count);
}

/** The barrier a TC message carries, or undefined for any other message (a cheap check per message). */
export function readFlowSync(message: Buffer): FlowSync | undefined {
  if (
    message.length !== FLOW_SYNC_LENGTH ||
    message[0] !== TCMessageType.userControl ||
    message.readUInt16BE(EVENT_OFFSET) !== UserControlEvent.flowSync
  )
    return undefined;
  return { syncId: message.readUInt32BE(EVENT_OFFSET + 2), count: message.readUInt32BE(EVENT_OFFSET + 6) };
}

interface Barrier<F> {
  count: number;
  /** The flows that delivered it, each held since. */
  met: Set<F>;
  since: number;
}

/**
 * The receiving side of Flow Sync for one NetStream (RFC 7425 §5.2; rtmfp-cpp's
 * FlowSyncManager): a flow that delivers a barrier holds its later messages until `count` flows
 * of the stream delivered the same syncID, so a status written after the last media (e.g.
 * UnpublishNotify) is never seen before it. Bounded: a barrier is released when it is older
 * than FLOW_SYNC_HOLD_MS (at the wake-up asked of the host when it began to hold, or as
 * messages arrive), when a flow that has not met it closes, or when FLOW_SYNC_MAX_HELD messages
 * wait. A held flow queues everything, so there are never more barriers than flows.
 */
export class FlowSyncReceiver<F> {
  /** Barriers released by a bound rather than met, for the owner to count. */
  releasedEarly = 0;
  private readonly deliver: (message: Buffer) => void;
  private readonly barriers = new Map<number, Barrier<F>>();
  /** A held flow's messages after its barrier, in order. */
  private readonly held = new Map<F, Buffer[]>();
  private heldCount = 0;
  private readonly wakeAt: WakeAt | undefined;
  private readonly service = (now: number): void => this.expire(now);

  /**
   * `wakeAt`: the host's timer, asked for a wake-up at each barrier's bound, so held messages
   * go on even when nothing more arrives; absent, the bound is checked only as messages arrive.
   */
  constructor(deliver: (message: Buffer) => void, wakeAt?: WakeAt) {
    this.deliver = deliver;
    this.wakeAt = wakeAt;
  }

  /** A message `flow` delivered in order: handed on now, held, or taken as a barrier. */
  receive(flow: F, message: Buffer, now: number): void {
    this.expire(now);
    const queue = this.held.get(flow);
    if (!queue) {
      this.take(flow, message, now);
      return;
    }
    queue.push(message);
    this.heldCount++;
    if (this.heldCount > FLOW_SYNC_MAX_HELD) this.releaseAll(now);
  }

  /** `flow` closed: a barrier it has not met can no longer be met, so it releases. */
  closed(flow: F, now: number): void {
    for (const [syncId, barrier] of this.barriers)
      if (!barrier.met.has(flow)) this.release(syncId, now, true);
  }

  /** Barriers older than FLOW_SYNC_HOLD_MS release their flows. */
  expire(now: number): void {
    for (const [syncId, barrier] of this.barriers)
      if (now - barrier.since >= FLOW_SYNC_HOLD_MS) this.release(syncId, now, true);
  }

  /** The stream is gone: nothing held is delivered. */
  clear(): void {
    this.barriers.clear();
    this.held.clear();
    this.heldCount = 0;
  }

  private releaseAll(now: number): void {
    for (const syncId of [...this.barriers.keys()]) this.release(syncId, now, true);
  }

  private take(flow: F, message: Buffer, now: number): void {
    const sync = readFlowSync(message);
    if (!sync) {
      this.deliver(message);
      return;
    }
    let barrier = this.barriers.get(sync.syncId);
    if (!barrier) {
      barrier = { count: sync.count, met: new Set(), since: now };
      this.barriers.set(sync.syncId, barrier);
    }
    barrier.met.add(flow);
    if (barrier.met.size >= barrier.count) {
      this.release(sync.syncId, now, false);
      return;
    }
    this.held.set(flow, []);
    if (barrier.met.size === 1) this.wakeAt?.(barrier.since + FLOW_SYNC_HOLD_MS, this.service);
  }

  private release(syncId: number, now: number, early: boolean): void {
    const barrier = this.barriers.get(syncId);
    if (!barrier) return;
    this.barriers.delete(syncId);
    if (early) this.releasedEarly++;
    for (const flow of barrier.met) {
      const queue = this.held.get(flow);
      if (!queue) continue;
      this.held.delete(flow);
      this.heldCount -= queue.length;
      for (let i = 0; i < queue.length; i++) {
        const next = this.held.get(flow);
        if (next) {
          // A later barrier on the same flow holds the rest of its queue again.
          for (let j = i; j < queue.length; j++) next.push(queue[j] as Buffer);
          this.heldCount += queue.length - i;
          break;
        }
        this.take(flow, queue[i] as Buffer, now);
      }
    }
  }
}
