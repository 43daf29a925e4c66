import { Redactor } from './redactor.js';

/**
 * Holds the redactor in force. Built once at startup from every known secret and rebuilt (never patched)
 * when proxy keys rotate, so logs, captures and error bodies always scrub the current set.
 */
export class RedactorHolder {
  private redactor: Redactor;

  /** `fixed`: secrets that never change while running (provider keys, env keys). */
  constructor(private readonly fixed: readonly string[]) {
    this.redactor = new Redactor(fixed);
  }

  get current(): Redactor {
    return this.redactor;
  }

  /** Rebuilds with the fixed secrets plus the current proxy keys. */
  update(dynamic: readonly string[]): void {
    this.redactor = new Redactor([...this.fixed, ...dynamic]);
  }
}
