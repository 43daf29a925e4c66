/**
 * The stamps every capture line starts with: `timestamp` (ISO 8601) and `sequence` (1, 2, … in the order
 * events are recorded). A dropped event keeps its number, so gaps in a capture file show where entries were
 * lost.
 */
export class CaptureStamps {
  private sequence = 0;
  private stampedAt = NaN;
  private stamp = '';

  /** `clock`: milliseconds since the epoch (Date.now unless a test sets one; no Date object per event). */
  constructor(private readonly clock: () => number = Date.now) {}

  /** Takes the next `count` sequence numbers for events that will not be written. */
  skip(count = 1): void {
    this.sequence += count;
  }

  /** The line for one event given as its JSON members without the braces, stamps first. */
  line(members: string): string {
    const stamps = this.opening();
    return members === '' ? `${stamps}}\n` : `${stamps},${members}}\n`;
  }

  /** The start of the next line: `{"timestamp":"…","sequence":N` (no closing brace, no comma). */
  opening(): string {
    return this.openingAt(this.clock());
  }

  /** {@link opening} for an event recorded at `ms` (since the epoch), elsewhere (the capture worker's). */
  openingAt(ms: number): string {
    return `{"timestamp":"${this.timestamp(ms)}","sequence":${++this.sequence}`;
  }

  /** ISO 8601 of `ms`, formatted once per millisecond: a busy proxy records many events in each. */
  private timestamp(ms: number): string {
    if (ms !== this.stampedAt) {
      this.stampedAt = ms;
      this.stamp = new Date(ms).toISOString();
    }
    return this.stamp;
  }
}
