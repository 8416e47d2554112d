import { parentPort } from 'node:worker_threads';
import { generateDHKeyPair, SUPPORTED_DH_GROUPS } from '../rtmfp/dh.ts';
import { type KeyingJob, responderKeying } from '../rtmfp/handshake.ts';

// Set up every group once now, so the first handshakes do not pay for it (~40 ms).
for (const group of SUPPORTED_DH_GROUPS) generateDHKeyPair(group);

// One handshake at a time per worker; the pool queues the rest.
parentPort?.on('message', (job: KeyingJob) => {
  try {
    parentPort?.postMessage(responderKeying(job));
  } catch (e) {
    parentPort?.postMessage({ error: e instanceof Error ? e.message : String(e) });
  }
});
