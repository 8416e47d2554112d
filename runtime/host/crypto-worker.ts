import { parentPort } from 'node:worker_threads';
import { type KeyingJob, responderKeying } from '../rtmfp/handshake.ts';

// One handshake at a time per worker; the pool queues the rest.
parentPort?.on('message', (job: KeyingJob) => {
  try {
    parentPort?.postMessage(responderKeying(job));
  } catch (e) {
    parentPort?.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
});
