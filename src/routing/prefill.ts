import type { ProxyConfig } from '../config/schema.js';

/** A model glob (`*` any run of characters, `?` one) as an anchored expression. */
function globPattern(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/**
 * Which backends' models take an assistant prefill (README, Routes and failover: `continue_streams`), from
 * `backends.<name>.prefill` — true (all its models), false (the default) or model globs — read once at start.
 * A prefill is only ever sent where this says yes, so a refusal of one can never stand in for a real error.
 */
export class PrefillTable {
  private readonly rules = new Map<string, true | RegExp[]>();

  constructor(backends: ProxyConfig['backends']) {
    for (const [name, entry] of Object.entries(backends)) {
      if (name === 'default_backend' || typeof entry !== 'object' || entry === null) continue;
      const prefill = entry.prefill;
      if (prefill === undefined || prefill === false) continue;
      this.rules.set(name, prefill === true ? true : prefill.map(globPattern));
    }
  }

  accepts(backend: string, model: string): boolean {
    const rule = this.rules.get(backend);
    if (rule === undefined) return false;
    return rule === true || rule.some((pattern) => pattern.test(model));
  }
}
