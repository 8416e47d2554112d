import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeadlineSlots } from '../../runtime/rtmfp/deadline-slots.ts';
import { prng } from '../support/prng.ts';

describe('DeadlineSlots', () => {
  test('an item is taken at the first slot boundary at or after its deadline, never before', () => {
    const d = new DeadlineSlots<string>(20);
    d.file('a', 45);
    d.file('b', 60);
    assert.equal(d.next(), 60);
    assert.deepEqual(d.takeDue(59.9), []);
    assert.deepEqual(d.takeDue(60).sort(), ['a', 'b']);
    assert.equal(d.size, 0);
    assert.equal(d.next(), Number.POSITIVE_INFINITY);
  });

  test('filing earlier moves the item; filing later leaves it where it is', () => {
    const d = new DeadlineSlots<string>(20);
    d.file('a', 100);
    d.file('a', 30);
    assert.equal(d.next(), 40);
    d.file('a', 500);
    assert.deepEqual(d.takeDue(40), ['a'], 'taken early: the caller re-files it by its deadline');
    assert.equal(d.next(), Number.POSITIVE_INFINITY);
  });

  test('removed items are not taken, and emptied slots do not wake anyone', () => {
    const d = new DeadlineSlots<string>(20);
    d.file('a', 20);
    d.file('b', 40);
    d.remove('a');
    assert.equal(d.next(), 40);
    d.remove('b');
    assert.equal(d.next(), Number.POSITIVE_INFINITY);
    assert.deepEqual(d.takeDue(1_000), []);
  });

  test('Infinity is never due', () => {
    const d = new DeadlineSlots<string>(20);
    d.file('a', Number.POSITIVE_INFINITY);
    assert.equal(d.size, 0);
  });

  test('10,000 items at random deadlines come out once each, in slot order, only when due', () => {
    const random = prng(7);
    const d = new DeadlineSlots<number>(20);
    const deadline = new Map<number, number>();
    for (let i = 0; i < 10_000; i++) {
      const at = random() * 30_000;
      deadline.set(i, at);
      d.file(i, at);
      if (i % 3 === 0) d.file(i, at + 5_000); // later: ignored
    }
    const seen = new Set<number>();
    for (let now = 0; now <= 30_020; now += 20) {
      for (const item of d.takeDue(now)) {
        assert.ok(deadline.get(item)! <= now, `item ${item} taken before its deadline`);
        assert.ok(deadline.get(item)! > now - 20, `item ${item} taken late`);
        assert.ok(!seen.has(item));
        seen.add(item);
      }
    }
    assert.equal(seen.size, 10_000);
  });
});
