import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { MemoryState } from '../../runtime/cluster/memory-state.ts';
import { nodeRecord } from './fixture.ts';
import { stateContract } from './state.contract.ts';

const logger = pino({ level: 'silent' });

stateContract('MemoryState', async () => {
  const state = new MemoryState({ logger });
  return { state, cleanup: () => state.close() };
});

describe('MemoryState: injected clock', () => {
  it('expires nodes and kv entries by the injected clock, without waiting', async () => {
    let now = 1_000_000;
    const state = new MemoryState({ now: () => now, logger });
    await state.heartbeat(nodeRecord('n1'), 3_000);
    await state.kv.set('chat', 'k', 'v', 1_000);
    assert.equal((await state.nodes())[0].heartbeatAt, 1_000_000);
    now += 1_000;
    assert.equal(await state.kv.get('chat', 'k'), null);
    assert.equal((await state.nodes()).length, 1);
    now += 2_000;
    assert.deepEqual(await state.nodes(), []);
    assert.deepEqual(await state.reap(), ['n1']);
  });

  it('time() does not go backwards when the injected clock does', async () => {
    let now = 5_000;
    const state = new MemoryState({ now: () => now, logger });
    assert.equal(await state.time(), 5_000);
    now = 4_000;
    assert.equal(await state.time(), 5_000);
  });

  it('stored node records are copies of what the caller passed', async () => {
    const state = new MemoryState({ logger });
    const record = nodeRecord('n1');
    await state.heartbeat(record, 10_000);
    record.load.clients = 999;
    assert.equal((await state.nodes())[0].load.clients, 3);
  });
});
