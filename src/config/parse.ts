import { ConfigError } from './config-error.js';
import type { SettingKind } from './schema.js';

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

/** The longest value an error quotes; no boolean or number is longer. */
const MAX_QUOTED_VALUE = 40;

/**
 * A wrong value as an error names it: quoted whole (the error is redacted where it is printed), or, when
 * longer, by its length only. Never cut: a secret given by mistake (a key in the wrong variable), cut short,
 * is no longer recognised by the redaction, and its start would be printed.
 */
function shown(raw: string): string {
  return raw.length > MAX_QUOTED_VALUE ? `a value of ${raw.length} characters` : JSON.stringify(raw);
}

/** Parses a value from an env var or a flag; `source` names it in the error (`APP_PORT`, `--port`). */
export function parseSettingValue(kind: SettingKind, raw: string, source: string): unknown {
  const text = raw.trim();
  switch (kind) {
    case 'bool': {
      const lower = text.toLowerCase();
      if (TRUE.has(lower)) return true;
      if (FALSE.has(lower)) return false;
      throw new ConfigError(
        `${source}: expected a boolean (1/true/yes/on or 0/false/no/off), got ${shown(raw)}`,
      );
    }
    case 'int':
    case 'number': {
      const value = text === '' ? NaN : Number(text);
      if (!Number.isFinite(value)) {
        throw new ConfigError(
          `${source}: expected ${kind === 'int' ? 'an integer' : 'a number'}, got ${shown(raw)}`,
        );
      }
      if (kind === 'int' && !Number.isInteger(value)) {
        throw new ConfigError(`${source}: expected an integer, got ${shown(raw)}`);
      }
      return value;
    }
    case 'list':
      return text
        .split(',')
        .map((item) => item.trim())
        .filter((item) => item.length > 0);
    default:
      return raw;
  }
}
