import { ConfigError } from './config-error.js';
import type { SettingKind } from './schema.js';

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

function shown(raw: string): string {
  const trimmed = raw.length > 40 ? `${raw.slice(0, 40)}…` : raw;
  return JSON.stringify(trimmed);
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
