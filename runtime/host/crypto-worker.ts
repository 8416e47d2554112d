import { workerData } from 'node:worker_threads';
import { generateDHKeyPair, SUPPORTED_DH_GROUPS } from '../rtmfp/dh.ts';
import { type KeyingResult, responderKeying } from '../rtmfp/handshake.ts';
import { CryptoChannel } from './crypto-channel.ts';
import { packKeyingResult, unpackKeyingJob } from './keying-message.ts';

// Set up every group once now, so the first handshakes do not pay for it (~40 ms).
for (const group of SUPPORTED_DH_GROUPS) generateDHKeyPair(group);

// One handshake at a time per worker; the pool queues the rest. The worker does nothing
// else, so it blocks on its channel (Worker.terminate() interrupts the wait).
const channel = CryptoChannel.open(workerData as SharedArrayBuffer);
for (;;) {
  let result: KeyingResult | Error;
  try {
    result = responderKeying(unpackKeyingJob(channel.take()));
  } catch (e) {
    result = e instanceof Error ? e : new Error(String(e));
  }
  channel.answer(packKeyingResult(result));
}
