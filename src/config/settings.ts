import { z } from 'zod';
import { ConfigSchema, settingMeta, type SettingMeta } from './schema.js';

/** A leaf setting found in the schema, with its YAML path. */
export interface SettingEntry {
  path: string[];
  /** Dotted YAML path, e.g. `auth.brute_force_protection.ttl_seconds`. */
  key: string;
  meta: SettingMeta;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let current = schema as z.ZodType & { _zod: { def: { innerType?: z.ZodType } } };
  while (current._zod.def.innerType) current = current._zod.def.innerType as typeof current;
  return current;
}

function walk(schema: z.ZodType, path: string[], out: SettingEntry[]): void {
  const meta = settingMeta(schema);
  if (meta) {
    out.push({ path, key: path.join('.'), meta });
    return;
  }
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    for (const [name, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) {
      walk(child, [...path, name], out);
    }
  }
}

/** Every setting with a flag or env var, in schema order — computed once. */
export const SETTINGS: readonly SettingEntry[] = (() => {
  const out: SettingEntry[] = [];
  walk(ConfigSchema, [], out);
  return out;
})();

export function settingAt(path: readonly (string | number)[]): SettingEntry | undefined {
  const key = path.join('.');
  return SETTINGS.find((s) => s.key === key);
}
