/** Counts datagrams dropped, by reason. Nothing is dropped silently. */
export class DropCounter {
  private readonly counts = new Map<string, number>();
  total = 0;

  add(reason: string): void {
    this.total++;
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }
}
