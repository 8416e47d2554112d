import { parentPort } from 'node:worker_threads';
import { generateDHKeyPair, SUPPORTED_DH_GROUPS } from '../rtmfp/dh.ts';
import { type KeyingResult, responderKeying } from '../rtmfp/handshake.ts';
import { packKeyingResult, unpackKeyingJob } from './keying-message.ts';

// Set up every group once now, so the first handshakes do not pay for it (~40 ms).
for (const group of SUPPORTED_DH_GROUPS) generateDHKeyPair(group);

// One handshake at a time per worker; the pool queues the rest.
parentPort?.on('message', (job: Uint8Array) => {
  let result: KeyingResult | Error;
  try {
    result = responderKeying(unpackKeyingJob(job));
  } catch (e) {
    result = e instanceof Error ? e : new Error(String(e));
  }
  const packed = packKeyingResult(result);
  parentPort?.postMessage(packed, [packed.buffer]);
});
