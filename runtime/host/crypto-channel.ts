/**
 * One request at a time between the crypto pool and one of its workers, through shared
 * memory: the pool writes a packed job and wakes the worker (Atomics.notify), the worker,
 * blocked in Atomics.wait, writes the packed answer and wakes the pool (Atomics.waitAsync).
 * A postMessage round trip cost ~60 µs of CPU per handshake between the two threads (a
 * structured clone and an event-loop wake-up on each side); this costs ~12 µs.
 */

/** Room for one message: a job is at most a startup packet's certificate and SKIC (~4.3 kB). */
const DATA_BYTES = 16 * 1024;
/** Int32 slots before the data: the state, then the message length. */
const STATE = 0;
const LENGTH = 1;
const HEADER_BYTES = 8;

/** States (0, nothing posted yet, is the memory's initial value): a job waits for the worker. */
const JOB = 1;
/** The worker's answer waits for the pool. */
const ANSWER = 2;

export class CryptoChannel {
  /** Hand this to the worker (`workerData`); `CryptoChannel.open` there. */
  readonly memory: SharedArrayBuffer;
  private readonly control: Int32Array;
  private readonly data: Uint8Array;

  private constructor(memory: SharedArrayBuffer) {
    this.memory = memory;
    this.control = new Int32Array(memory, 0, HEADER_BYTES / 4);
    this.data = new Uint8Array(memory, HEADER_BYTES, DATA_BYTES);
  }

  static create(): CryptoChannel {
    return new CryptoChannel(new SharedArrayBuffer(HEADER_BYTES + DATA_BYTES));
  }

  static open(memory: SharedArrayBuffer): CryptoChannel {
    return new CryptoChannel(memory);
  }

  /** Pool side: posts a job and resolves with the worker's answer (a copy). */
  request(job: Uint8Array): Promise<Uint8Array> {
    this.write(job);
    Atomics.store(this.control, STATE, JOB);
    Atomics.notify(this.control, STATE);
    return this.answered();
  }

  /**
   * The answer, once the state says there is one. A wake-up is only a hint: Atomics.notify wakes
   * every waiter on the slot, whoever calls it and why. Reading on any wake-up, a node under
   * tcload once parsed garbage as an answer after some 10^4 handshakes and died (not reproduced
   * since); checking the state makes an early wake-up harmless.
   */
  private async answered(): Promise<Uint8Array> {
    for (;;) {
      const wait = Atomics.waitAsync(this.control, STATE, JOB);
      if (wait.async) await wait.value;
      if (Atomics.load(this.control, STATE) === ANSWER) return this.read();
    }
  }

  /** Worker side: blocks until a job is posted; returns a copy of it. */
  take(): Uint8Array {
    for (;;) {
      const state = Atomics.load(this.control, STATE);
      if (state === JOB) return this.read();
      Atomics.wait(this.control, STATE, state);
    }
  }

  /** Worker side: posts the answer to the job taken last. */
  answer(bytes: Uint8Array): void {
    this.write(bytes);
    Atomics.store(this.control, STATE, ANSWER);
    Atomics.notify(this.control, STATE);
  }

  private write(bytes: Uint8Array): void {
    if (bytes.length > DATA_BYTES)
      throw new RangeError(`crypto channel message of ${bytes.length} bytes exceeds ${DATA_BYTES}`);
    this.data.set(bytes);
    Atomics.store(this.control, LENGTH, bytes.length);
  }

  private read(): Uint8Array {
    return this.data.slice(0, Atomics.load(this.control, LENGTH));
  }
}
