import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { errorText } from '../error-text.ts';
import { moduleUrl } from '../module-url.ts';
import type { KeyingJob, KeyingResult } from '../rtmfp/handshake.ts';
import { CryptoChannel } from './crypto-channel.ts';
import { packKeyingJob, unpackKeyingResult } from './keying-message.ts';

/** Handshakes waiting for a worker; past this an IIKeying is dropped and the client retransmits. */
export const DEFAULT_QUEUE_LIMIT = 512;

interface Pending {
  job: KeyingJob;
  done: (result: KeyingResult | Error) => void;
}

interface Slot {
  worker: Worker;
  channel: CryptoChannel;
  busy: Pending | undefined;
}

/**
 * Runs handshake key agreement (a 4096-bit DH costs ~3.5 ms) on worker threads, so sessions
 * that are already open keep flowing while a burst of new ones is keyed — as rtmfp-cpp's
 * crypto thread does. The queue is bounded: `submit` returns false when it is full.
 */
export class CryptoPool {
  readonly size: number;
  private readonly queueLimit: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private closed = false;

  constructor(size = Math.max(1, availableParallelism() - 1), queueLimit = DEFAULT_QUEUE_LIMIT) {
    this.size = size;
    this.queueLimit = queueLimit;
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Queues a job; false when the queue is full (the caller drops and counts the handshake). */
  submit(job: KeyingJob, done: (result: KeyingResult | Error) => void): boolean {
    if (this.closed || this.queue.length >= this.queueLimit) return false;
    this.queue.push({ job, done });
    this.dispatch();
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.done(new Error('crypto pool closed'));
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const channel = CryptoChannel.create();
    const worker = new Worker(moduleUrl('./crypto-worker.ts', import.meta.url), {
      workerData: channel.memory,
    });
    worker.unref();
    const slot: Slot = { worker, channel, busy: undefined };
    worker.on('error', (err) => {
      const p = slot.busy;
      slot.busy = undefined;
      p?.done(err);
      if (this.closed) return;
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots[i] = this.spawn();
      this.dispatch();
    });
    return slot;
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy || this.queue.length === 0) continue;
      const p = this.queue.shift()!;
      slot.busy = p;
      let answered: Promise<Uint8Array>;
      try {
        answered = slot.channel.request(packKeyingJob(p.job));
      } catch (e) {
        slot.busy = undefined;
        p.done(e instanceof Error ? e : new Error(String(e)));
        continue;
      }
      answered.then((packed) => {
        // A worker that failed meanwhile was replaced and its job already failed.
        if (slot.busy !== p) return;
        slot.busy = undefined;
        let result: KeyingResult | Error;
        try {
          result = unpackKeyingResult(packed);
        } catch (e) {
          // Fails this handshake only: a throw here would be an unhandled rejection.
          result = new Error(`crypto worker answer unreadable: ${errorText(e)}`);
        }
        p.done(result);
        this.dispatch();
      });
    }
  }
}
