/**
 * Items (sessions) filed by the time they are next due, in slots of `slotMs`: a timer tick takes
 * only the items that are due, however many are waiting. (Walking the whole session table on
 * every tick cost 50 walks a second × every session, keepalive deadlines being spread out.)
 *
 * An item is filed under one slot at a time, at or before its deadline: filing it later than
 * where it is does nothing, since the tick that takes it early re-files it. So a deadline that
 * moves later costs nothing until it would have been due.
 */
export class DeadlineSlots<T> {
  private readonly slotMs: number;
  private readonly slots = new Map<number, Set<T>>();
  private readonly slotOf = new Map<T, number>();
  /** Min-heap of the slot numbers in `slots` (an emptied slot stays until it reaches the top). */
  private readonly heap: number[] = [];

  constructor(slotMs: number) {
    this.slotMs = slotMs;
  }

  get size(): number {
    return this.slotOf.size;
  }

  /** Makes sure `item` is taken by the first tick at or after `at` (Infinity: never). */
  file(item: T, at: number): void {
    if (!(at < Number.POSITIVE_INFINITY)) return;
    // Slot n is taken at n × slotMs: the first boundary at or after `at`, never before it.
    const slot = Math.ceil(at / this.slotMs);
    const current = this.slotOf.get(item);
    if (current !== undefined) {
      if (current <= slot) return;
      this.slots.get(current)?.delete(item);
    }
    this.slotOf.set(item, slot);
    let items = this.slots.get(slot);
    if (!items) {
      items = new Set();
      this.slots.set(slot, items);
      this.push(slot);
    }
    items.add(item);
  }

  remove(item: T): void {
    const slot = this.slotOf.get(item);
    if (slot === undefined) return;
    this.slotOf.delete(item);
    this.slots.get(slot)?.delete(item);
  }

  /** When the earliest filed item is due (a slot boundary), or Infinity. */
  next(): number {
    for (;;) {
      const slot = this.heap[0];
      if (slot === undefined) return Number.POSITIVE_INFINITY;
      if ((this.slots.get(slot)?.size ?? 0) > 0) return slot * this.slotMs;
      this.slots.delete(slot);
      this.pop();
    }
  }

  /** Unfiles and returns every item filed in slots up to `now`; the caller re-files what stays. */
  takeDue(now: number): T[] {
    const last = Math.floor(now / this.slotMs);
    const due: T[] = [];
    while (this.heap.length > 0 && this.heap[0] <= last) {
      const slot = this.pop();
      const items = this.slots.get(slot);
      this.slots.delete(slot);
      if (!items) continue;
      for (const item of items) {
        this.slotOf.delete(item);
        due.push(item);
      }
    }
    return due;
  }

  private push(slot: number): void {
    const h = this.heap;
    let i = h.push(slot) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent] <= slot) break;
      h[i] = h[parent];
      i = parent;
    }
    h[i] = slot;
  }

  private pop(): number {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= h.length) break;
        const child = left + 1 < h.length && h[left + 1] < h[left] ? left + 1 : left;
        if (h[child] >= last) break;
        h[i] = h[child];
        i = child;
      }
      h[i] = last;
    }
    return top;
  }
}
