/** Seconds of history a load report covers: recent enough to follow a burst, long enough to smooth it. */
export const LOAD_WINDOW_S = 5;
/** How often the meter takes a sample (the owner's timer), ms. */
export const LOAD_SAMPLE_MS = 1_000;

/** Counters that only grow, read from the node: rates are their differences over the window. */
export interface LoadCounters {
  packets: number;
  bytes: number;
  /** CPU time of the process (user + system), µs. */
  cpuMicros: number;
}

/** Rates over the last LOAD_WINDOW_S seconds. */
export interface LoadRates {
  /** Share of one core (can exceed 1 on several cores). */
  cpu: number;
  packetsPerSecond: number;
  bytesPerSecond: number;
}

interface Sample extends LoadCounters {
  at: number;
}

/**
 * The load a node reports with each heartbeat (DESIGN.md: computed locally from a ring buffer
 * of recent seconds): a sample of the counters each second, and rates from the oldest sample
 * still in the window to now. A node that was busy a minute ago and idle since reports idle,
 * which a lifetime average would not. Time is passed in; the owner runs the timer.
 */
export class LoadMeter {
  private readonly read: () => LoadCounters;
  /** Ring of the last LOAD_WINDOW_S + 1 samples; `next` is where the next one goes. */
  private readonly ring: Sample[] = [];
  private next = 0;

  constructor(read: () => LoadCounters, now: number) {
    this.read = read;
    this.sample(now);
  }

  /** Takes a sample (every LOAD_SAMPLE_MS), overwriting the oldest once the ring is full. */
  sample(now: number): void {
    const s = { ...this.read(), at: now };
    if (this.ring.length < LOAD_WINDOW_S + 1) this.ring.push(s);
    else this.ring[this.next] = s;
    this.next = (this.next + 1) % (LOAD_WINDOW_S + 1);
  }

  /**
   * Rates from the oldest sample within the window to the counters now; when every sample is
   * older (the sampling timer was held up), from the newest one.
   */
  rates(now: number): LoadRates {
    const since = now - LOAD_WINDOW_S * 1000;
    const inWindow = this.ring.filter((s) => s.at >= since);
    const from = inWindow.length > 0 ? oldest(inWindow) : newest(this.ring);
    const current = this.read();
    const seconds = Math.max(0.001, (now - from.at) / 1000);
    return {
      cpu: (current.cpuMicros - from.cpuMicros) / 1e6 / seconds,
      packetsPerSecond: (current.packets - from.packets) / seconds,
      bytesPerSecond: (current.bytes - from.bytes) / seconds,
    };
  }
}

function oldest(samples: Sample[]): Sample {
  return samples.reduce((a, b) => (b.at < a.at ? b : a));
}

function newest(samples: Sample[]): Sample {
  return samples.reduce((a, b) => (b.at > a.at ? b : a));
}
