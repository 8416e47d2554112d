import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { CryptoChannel } from '../../runtime/host/crypto-channel.ts';

/**
 * A worker on the channel that answers each job with its bytes reversed, `delayMs` later. The
 * code is inline so the test needs no second file; it speaks the channel through the class.
 */
function slowEchoWorker(memory: SharedArrayBuffer, delayMs: number): Worker {
  const channelUrl = new URL('../../runtime/host/crypto-channel.ts', import.meta.url).href;
  const source = `
    const { workerData } = await import('node:worker_threads');
    const { CryptoChannel } = await import(${JSON.stringify(channelUrl)});
    const channel = CryptoChannel.open(workerData.memory);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (;;) {
      const job = channel.take();
      Atomics.wait(pause, 0, 0, workerData.delayMs);
      channel.answer(job.reverse());
    }`;
  const worker = new Worker(new URL(`data:text/javascript,${encodeURIComponent(source)}`), {
    workerData: { memory, delayMs },
  });
  worker.unref();
  return worker;
}

test('a request resolves with the answer, job after job', async (t) => {
  const channel = CryptoChannel.create();
  const worker = slowEchoWorker(channel.memory, 1);
  t.after(() => worker.terminate());
  for (let i = 0; i < 20; i++) {
    const answer = await channel.request(Uint8Array.of(i, 1, 2));
    assert.deepEqual([...answer], [2, 1, i]);
  }
});

test('a wake-up that is not the answer is waited through: the job is never read back as its answer', async (t) => {
  const channel = CryptoChannel.create();
  const worker = slowEchoWorker(channel.memory, 100);
  t.after(() => worker.terminate());
  const pending = channel.request(Uint8Array.of(1, 2, 3));
  // Anyone may notify the slot; here the pool's own thread does, while the worker still works.
  await new Promise((r) => setTimeout(r, 20));
  Atomics.notify(new Int32Array(channel.memory, 0, 1), 0);
  assert.deepEqual([...(await pending)], [3, 2, 1]);
});
