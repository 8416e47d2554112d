import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  encodeFlowSync,
  FLOW_SYNC_HOLD_MS,
  FLOW_SYNC_MAX_HELD,
  FlowSyncReceiver,
  readFlowSync,
} from '../../runtime/rtmfp/flow-sync.ts';
import { encodeTCMessage, encodeUserControl, TCMessageType } from '../../runtime/rtmfp/tc-message.ts';

/** An audio message at `n` ms whose body ends with the name of the flow it rides. */
const frame = (n: number, flow = '') =>
  encodeTCMessage(
    TCMessageType.audio,
    n,
    Buffer.concat([Buffer.from([0xaf, 1, n & 0xff]), Buffer.from(flow)]),
  );

/**
 * A receiver whose deliveries are logged as `flow:timestamp` (each frame names its flow), and
 * the wake-ups it asks of its host, run by the test as a host's timer would.
 */
function receiver() {
  const log: string[] = [];
  const wakeups: { at: number; service: (now: number) => void }[] = [];
  const sync = new FlowSyncReceiver<string>(
    (m) => log.push(`${m.subarray(8).toString()}:${m.readUInt32BE(1)}`),
    (at, service) => wakeups.push({ at, service }),
  );
  return { sync, log, wakeups };
}

describe('Flow Sync (RFC 7425 §5.2)', () => {
  test('the barrier is User Control 0x22 with u32 syncID and u32 count, as rtmfp-cpp writes it', () => {
    assert.deepEqual(encodeFlowSync(0x01020304, 3), Buffer.from('040000000000220102030400000003', 'hex'));
    assert.deepEqual(readFlowSync(encodeFlowSync(9, 2)), { syncId: 9, count: 2 });
    assert.equal(readFlowSync(encodeUserControl(0, 1)), undefined, 'StreamBegin is not a barrier');
    assert.equal(readFlowSync(frame(1)), undefined);
  });

  test('a held flow releases, in order, when the last flow meets the barrier', () => {
    const { sync, log } = receiver();
    sync.receive('data', encodeFlowSync(1, 2), 0);
    sync.receive('data', frame(10, 'data'), 0);
    sync.receive('data', frame(11, 'data'), 0);
    sync.receive('audio', frame(5, 'audio'), 0);
    assert.deepEqual(log, ['audio:5']);
    sync.receive('audio', encodeFlowSync(1, 2), 0);
    sync.receive('audio', frame(12, 'audio'), 0);
    assert.deepEqual(log, ['audio:5', 'data:10', 'data:11', 'audio:12']);
    assert.equal(sync.releasedEarly, 0);
  });

  test('a second barrier in a released queue holds the rest of it again', () => {
    const { sync, log } = receiver();
    sync.receive('data', encodeFlowSync(1, 2), 0);
    sync.receive('data', frame(1, 'data'), 0);
    sync.receive('data', encodeFlowSync(2, 2), 0);
    sync.receive('data', frame(2, 'data'), 0);
    sync.receive('audio', encodeFlowSync(1, 2), 0);
    assert.deepEqual(log, ['data:1']);
    sync.receive('audio', encodeFlowSync(2, 2), 0);
    assert.deepEqual(log, ['data:1', 'data:2']);
  });

  test(`a barrier never met releases after ${FLOW_SYNC_HOLD_MS} ms, checked as messages arrive`, () => {
    const { sync, log } = receiver();
    sync.receive('data', encodeFlowSync(1, 3), 1_000);
    sync.receive('data', frame(1, 'data'), 1_000);
    sync.receive('audio', frame(2, 'audio'), 1_000 + FLOW_SYNC_HOLD_MS - 1);
    assert.deepEqual(log, ['audio:2']);
    sync.receive('audio', frame(3, 'audio'), 1_000 + FLOW_SYNC_HOLD_MS);
    assert.deepEqual(log, ['audio:2', 'data:1', 'audio:3']);
    assert.equal(sync.releasedEarly, 1);
  });

  test(`a barrier never met releases its flows at ${FLOW_SYNC_HOLD_MS} ms even when nothing more arrives`, () => {
    const { sync, log, wakeups } = receiver();
    sync.receive('data', encodeFlowSync(1, 2), 1_000);
    sync.receive('data', frame(1, 'data'), 1_000);
    sync.receive('data', frame(2, 'data'), 1_500);
    assert.deepEqual(
      wakeups.map((w) => w.at),
      [1_000 + FLOW_SYNC_HOLD_MS],
      'one wake-up asked of the host, at the bound',
    );
    for (const w of wakeups) w.service(w.at);
    assert.deepEqual(log, ['data:1', 'data:2']);
    assert.equal(sync.releasedEarly, 1);
  });

  test('a barrier met at once asks for no wake-up, and a wake-up after a barrier was met delivers nothing twice', () => {
    const { sync, log, wakeups } = receiver();
    sync.receive('data', encodeFlowSync(1, 1), 0);
    assert.equal(wakeups.length, 0, 'a barrier on the only flow is met as it arrives');
    sync.receive('data', encodeFlowSync(2, 2), 0);
    sync.receive('data', frame(1, 'data'), 0);
    sync.receive('audio', encodeFlowSync(2, 2), 10);
    assert.deepEqual(log, ['data:1']);
    for (const w of wakeups) w.service(w.at);
    assert.deepEqual(log, ['data:1'], 'nothing delivered twice');
    assert.equal(sync.releasedEarly, 0);
  });

  test('a flow that ends before meeting a barrier releases it', () => {
    const { sync, log } = receiver();
    sync.receive('data', encodeFlowSync(1, 2), 0);
    sync.receive('data', frame(1, 'data'), 0);
    sync.closed('data', 0);
    assert.deepEqual(log, [], 'the ended flow had met it: the other may still come');
    sync.closed('video', 0);
    assert.deepEqual(log, ['data:1']);
  });

  test(`more than ${FLOW_SYNC_MAX_HELD} held messages release every barrier`, () => {
    const { sync, log } = receiver();
    sync.receive('data', encodeFlowSync(1, 2), 0);
    for (let i = 0; i < FLOW_SYNC_MAX_HELD; i++) sync.receive('data', frame(i, 'data'), 0);
    assert.equal(log.length, 0);
    sync.receive('data', frame(FLOW_SYNC_MAX_HELD, 'data'), 0);
    assert.equal(log.length, FLOW_SYNC_MAX_HELD + 1);
    assert.equal(log.at(-1), `data:${FLOW_SYNC_MAX_HELD}`);
  });
});
