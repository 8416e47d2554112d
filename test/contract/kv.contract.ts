import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_KEY_LENGTH } from '../../runtime/cluster/kv.ts';
import { type MakeState, sleep, useState } from './fixture.ts';

/** `State.kv` (ctx.kv): app-scoped values with TTL, stored through value-codec.ts. */
export function kvContract(name: string, make: MakeState): void {
  describe(`${name}: kv`, () => {
    const state = useState(make);
    const kv = () => state().kv;

    it('get of a missing key is null', async () => {
      assert.equal(await kv().get('chat', 'missing'), null);
    });

    it('set then get round-trips JSON values, and a later set replaces the value', async () => {
      const value = { name: 'ada', tags: ['a', 'b'], nested: { n: 1.5, ok: true, none: null } };
      await kv().set('chat', 'user:1', value, 0);
      assert.deepEqual(await kv().get('chat', 'user:1'), value);
      await kv().set('chat', 'user:1', 'plain', 0);
      assert.equal(await kv().get('chat', 'user:1'), 'plain');
    });

    it('Date, Uint8Array, bigint, NaN and ±Infinity round-trip, also nested', async () => {
      const value = {
        at: new Date('2024-05-01T12:00:00.123Z'),
        bytes: new Uint8Array([0, 1, 254, 255]),
        big: 2n ** 70n,
        odd: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY],
        list: [{ when: new Date(0) }],
      };
      await kv().set('chat', 'k', value, 0);
      assert.deepEqual(await kv().get('chat', 'k'), value);
      await kv().set('chat', 'buf', Buffer.from('hi'), 0);
      assert.deepEqual(await kv().get('chat', 'buf'), new Uint8Array([0x68, 0x69]));
    });

    it('undefined reads back as null, and object properties holding it are left out', async () => {
      await kv().set('chat', 'top', undefined, 0);
      assert.equal(await kv().get('chat', 'top'), null);
      await kv().set('chat', 'nested', { a: undefined, b: [undefined, 1] }, 0);
      assert.deepEqual(await kv().get('chat', 'nested'), { b: [null, 1] });
    });

    it('an object with its own "$t" property is stored as data, not mistaken for a tag', async () => {
      const value = { $t: 'date', v: 0, inner: { $t: 'bytes', v: 'AAE=' } };
      await kv().set('chat', 'k', value, 0);
      assert.deepEqual(await kv().get('chat', 'k'), value);
    });

    it('values that cannot be stored are refused with a TypeError and nothing is written', async () => {
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      await assert.rejects(kv().set('chat', 'k', new Map(), 0), TypeError);
      await assert.rejects(kv().set('chat', 'k', { f: () => 1 }, 0), TypeError);
      await assert.rejects(kv().set('chat', 'k', cycle, 0), /circular/);
      assert.equal(await kv().get('chat', 'k'), null);
    });

    it('delete removes a key', async () => {
      await kv().set('chat', 'k', 1, 0);
      await kv().delete('chat', 'k');
      await kv().delete('chat', 'never-set');
      assert.equal(await kv().get('chat', 'k'), null);
    });

    it('set with a ttl expires; ttl 0 keeps it; setting again without ttl clears the ttl', async () => {
      // Four round trips happen inside the ttl; 400 ms leaves a loaded machine room.
      await kv().set('chat', 'short', 'a', 400);
      await kv().set('chat', 'forever', 'b', 0);
      await kv().set('chat', 'renewed', 'c', 400);
      await kv().set('chat', 'renewed', 'd', 0);
      assert.equal(await kv().get('chat', 'short'), 'a');
      await sleep(500);
      assert.equal(await kv().get('chat', 'short'), null);
      assert.equal(await kv().get('chat', 'forever'), 'b');
      assert.equal(await kv().get('chat', 'renewed'), 'd');
    });

    it('set refuses a negative or fractional ttl', async () => {
      await assert.rejects(kv().set('chat', 'k', 1, -1), /ttlMs/);
      await assert.rejects(kv().set('chat', 'k', 1, 1.5), /ttlMs/);
    });

    it('incr counts from 0 and adds as JS numbers do, fractions included', async () => {
      assert.equal(await kv().incr('chat', 'n', 1), 1);
      assert.equal(await kv().incr('chat', 'n', 2.5), 3.5);
      assert.equal(await kv().incr('chat', 'n', -10), -6.5);
      assert.equal(await kv().get('chat', 'n'), -6.5);
      assert.equal(await kv().incr('chat', 'f', 0.1), 0.1);
      assert.equal(await kv().incr('chat', 'f', 0.2), 0.1 + 0.2);
      assert.equal(await kv().incr('chat', 'big', 2 ** 53), 2 ** 53);
      assert.equal(await kv().incr('chat', 'tiny', 5e-324), 5e-324);
    });

    it('incr adds to a number stored with set', async () => {
      await kv().set('chat', 'n', 41, 0);
      assert.equal(await kv().incr('chat', 'n', 1), 42);
      assert.equal(await kv().get('chat', 'n'), 42);
    });

    it('incr keeps the ttl of the key', async () => {
      await kv().set('chat', 'n', 5, 400);
      assert.equal(await kv().incr('chat', 'n', 1), 6);
      await sleep(500);
      assert.equal(await kv().get('chat', 'n'), null);
    });

    it('incr of a non-number is refused and leaves the value as it was', async () => {
      await kv().set('chat', 's', '5', 0);
      await kv().set('chat', 'o', { n: 1 }, 0);
      await assert.rejects(kv().incr('chat', 's', 1), /"s" holds a string, not a number/);
      await assert.rejects(kv().incr('chat', 'o', 1), /holds an object, not a number/);
      assert.equal(await kv().get('chat', 's'), '5');
    });

    it('incr refuses a non-finite step and an overflow, changing nothing', async () => {
      await assert.rejects(kv().incr('chat', 'n', Number.NaN), /finite/);
      await kv().set('chat', 'max', Number.MAX_VALUE, 0);
      await assert.rejects(kv().incr('chat', 'max', Number.MAX_VALUE), /would become Infinity/);
      assert.equal(await kv().get('chat', 'max'), Number.MAX_VALUE);
      await kv().set('chat', 'inf', Number.POSITIVE_INFINITY, 0);
      await assert.rejects(kv().incr('chat', 'inf', 1), /would become Infinity/);
    });

    it('keys are scoped per app', async () => {
      await kv().set('chat', 'k', 'chat value', 0);
      await kv().set('game', 'k', 'game value', 0);
      await kv().incr('game', 'count', 1);
      await kv().delete('chat', 'k');
      assert.equal(await kv().get('chat', 'k'), null);
      assert.equal(await kv().get('game', 'k'), 'game value');
      assert.equal(await kv().get('chat', 'count'), null);
    });

    it(`keys are 1..${MAX_KEY_LENGTH} characters, any characters`, async () => {
      await assert.rejects(kv().set('chat', '', 1, 0), /keys must be/);
      await assert.rejects(kv().set('chat', 'x'.repeat(MAX_KEY_LENGTH + 1), 1, 0), /keys must be/);
      await assert.rejects(kv().incr('chat', '', 1), /keys must be/);
      const key = `${'x'.repeat(MAX_KEY_LENGTH - 6)}:{a} é`;
      await kv().set('chat', key, 'long', 0);
      assert.equal(await kv().get('chat', key), 'long');
    });
  });
}
