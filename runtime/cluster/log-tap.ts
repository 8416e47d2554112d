import type { State } from './state.ts';

/** Lines per second per app a node publishes for `fnhost tail`; past it lines are counted, not sent. */
const MAX_LINES_PER_SECOND = 200;

/**
 * `fnhost tail` without cost when nobody tails (DESIGN.md "Deploy"): a tail announces itself
 * on channel `tail` every 2 s with `{app, until}`; while an announcement is fresh, this node
 * publishes the app's `ctx.log` lines on `logs:<app>`, at most MAX_LINES_PER_SECOND, and tells
 * the tail how many it dropped (`{dropped, node}`) once it may send again.
 */
export class LogTap {
  private readonly state: State;
  private readonly nodeId: () => string;
  private readonly until = new Map<string, number>();
  private readonly window = new Map<string, { second: number; sent: number; dropped: number }>();
  private unsubscribe: (() => Promise<void>) | undefined;

  constructor(state: State, nodeId: () => string) {
    this.state = state;
    this.nodeId = nodeId;
  }

  async start(): Promise<void> {
    this.unsubscribe = await this.state.subscribe('tail', (message) => {
      try {
        const { app, until } = JSON.parse(message) as { app?: unknown; until?: unknown };
        if (typeof app === 'string' && typeof until === 'number') {
          this.until.set(app, Math.min(until, Date.now() + 60_000));
        }
      } catch {
        // not an announcement
      }
    });
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.();
  }

  /** One `ctx.log` line of `app`; published only while someone tails the app. */
  tap(app: string, record: Record<string, unknown>): void {
    const now = Date.now();
    if ((this.until.get(app) ?? 0) < now) return;
    const second = Math.floor(now / 1000);
    let w = this.window.get(app);
    if (!w || w.second !== second) {
      if (w && w.dropped > 0) this.publish(app, { dropped: w.dropped, node: this.nodeId() });
      w = { second, sent: 0, dropped: 0 };
      this.window.set(app, w);
    }
    if (w.sent >= MAX_LINES_PER_SECOND) {
      w.dropped++;
      return;
    }
    w.sent++;
    this.publish(app, { time: now, node: this.nodeId(), app, ...record });
  }

  private publish(app: string, record: Record<string, unknown>): void {
    let text: string;
    try {
      text = JSON.stringify(record);
    } catch {
      text = JSON.stringify({ time: record.time, node: record.node, app, msg: String(record.msg) });
    }
    void this.state.publish(`logs:${app}`, text).catch(() => {});
  }
}
