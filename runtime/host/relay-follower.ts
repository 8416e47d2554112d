import type { Logger } from 'pino';
import type { PublicationStore } from '../cluster/publications.ts';
import { errorText } from '../error-text.ts';
import type { RelaySink, StreamRelays } from '../relay/stream-relays.ts';

/**
 * How often the publication registry is read for the streams this node's players wait on: a
 * publisher that appears (or moves) on another node is relayed here within this.
 */
export const RELAY_LOOKUP_MS = 1_000;

/** What the stream layer asks of relaying (NodeStreams' `relays`). */
export interface StreamFeed {
  /**
   * Players here want (app, name) and nobody publishes it here: keep `sink` fed from the node
   * that publishes it, wherever and whenever that is.
   */
  follow(app: string, name: string, sink: RelaySink): void;
  /** No player wants it any more, or it is published here now: stop relaying it. */
  unfollow(app: string, name: string): void;
}

export interface RelayFollowerOptions {
  relays: StreamRelays;
  publications: PublicationStore;
  /** This node's id. */
  node: () => string;
  log: Logger;
  lookupMs?: number;
}

interface Followed {
  app: string;
  name: string;
  sink: RelaySink;
  /** A registry read is in flight (reads do not pile up behind a slow store). */
  looking: boolean;
}

/**
 * Keeps the streams this node's players wait on relayed from their origin, as the publication
 * registry names it: at once when the first player comes, then every RELAY_LOOKUP_MS, so a
 * publisher that appears later, or on another node after an unpublish, reaches the players
 * here. A relay whose origin died ends on its own (its players hear UnpublishNotify); the next
 * read finds the stream's new origin, if it has one.
 */
export class RelayFollower implements StreamFeed {
  private readonly o: RelayFollowerOptions;
  private readonly followed = new Map<string, Followed>();
  private timer: NodeJS.Timeout | undefined;

  constructor(o: RelayFollowerOptions) {
    this.o = o;
  }

  follow(app: string, name: string, sink: RelaySink): void {
    const key = keyOf(app, name);
    const known = this.followed.get(key);
    if (known?.sink === sink) return;
    const entry: Followed = { app, name, sink, looking: false };
    this.followed.set(key, entry);
    void this.lookup(key, entry);
    this.timer ??= setInterval(() => {
      for (const [k, e] of this.followed) void this.lookup(k, e);
    }, this.o.lookupMs ?? RELAY_LOOKUP_MS);
    this.timer.unref();
  }

  unfollow(app: string, name: string): void {
    this.followed.delete(keyOf(app, name));
    this.o.relays.stop(app, name);
    if (this.followed.size === 0) this.stopTimer();
  }

  /** Streams followed now. */
  get size(): number {
    return this.followed.size;
  }

  /** Stops following (node shutdown); the relays are the caller's to stop. */
  stop(): void {
    this.followed.clear();
    this.stopTimer();
  }

  private stopTimer(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async lookup(key: string, entry: Followed): Promise<void> {
    if (entry.looking) return;
    entry.looking = true;
    const info = await this.o.publications.get(entry.app, entry.name).catch((e: unknown) => {
      this.o.log.debug({ name: entry.name, err: errorText(e) }, 'relay: could not read the registry');
      return null;
    });
    entry.looking = false;
    // A failed read (null) or no publisher anywhere: a relay to the last origin waits on there.
    if (this.followed.get(key) !== entry || !info) return;
    const { app, name } = entry;
    if (info.node === this.o.node()) {
      this.o.relays.stop(app, name);
      return;
    }
    try {
      // Nothing changes when it already relays from there into this sink.
      this.o.relays.start(app, name, info.node, entry.sink);
    } catch (e) {
      // The origin is not linkable now (dying, draining): the next read tries again.
      this.o.log.debug({ name, origin: info.node, err: errorText(e) }, 'relay: origin not reachable');
    }
  }
}

function keyOf(app: string, name: string): string {
  return `${app}\u0000${name}`;
}
