/**
 * The brute-force policy the guard and its stores run on, derived from `auth.brute_force_protection`.
 *
 * The config schema (src/config/schema.ts) is the one source of the settings' defaults and ranges, and it
 * validates them once, when the configuration is loaded. This module only renames them for the algorithm,
 * so the guard and the stores trust the policy they are given and check nothing again.
 */
import { describeIssue } from '../config/load.js';
import { BruteForceSchema, type BruteForceSettings } from '../config/schema.js';
import type { BruteForcePolicy } from './stores/types.js';

export type { BruteForcePolicy };

/** Each policy field and the YAML key it comes from. */
const SETTING_OF = {
  maxFailedAttempts: 'max_failed_attempts',
  ttlSeconds: 'ttl_seconds',
  initialBlockSeconds: 'initial_block_seconds',
  blockMultiplier: 'block_multiplier',
  maxBlockSeconds: 'max_block_seconds',
  maxTrackedClients: 'max_tracked_clients',
} as const satisfies Record<keyof BruteForcePolicy, keyof BruteForceSettings>;

const POLICY_FIELDS = Object.keys(SETTING_OF) as Array<keyof BruteForcePolicy>;

/** YAML path of the section, so an issue names its setting as the config loader does. */
const SECTION_PATH = ['auth', 'brute_force_protection'];

/** The policy of validated settings (a loaded configuration). */
export function bruteForcePolicyOf(settings: BruteForceSettings): BruteForcePolicy {
  return Object.fromEntries(
    POLICY_FIELDS.map((field) => [field, settings[SETTING_OF[field]]]),
  ) as unknown as BruteForcePolicy;
}

/** The policy with every setting at its schema default. */
export const DEFAULT_BRUTE_FORCE_POLICY: Readonly<BruteForcePolicy> = Object.freeze(
  bruteForcePolicyOf(BruteForceSchema.parse({})),
);

/**
 * A policy built in code (tests, embedding) rather than loaded from configuration: the defaults with
 * `overrides`, checked against the same schema. Throws a RangeError naming the first field out of range.
 */
export function bruteForcePolicy(overrides: Partial<BruteForcePolicy> = {}): BruteForcePolicy {
  const settings: Record<string, unknown> = {};
  for (const field of POLICY_FIELDS) {
    if (overrides[field] !== undefined) settings[SETTING_OF[field]] = overrides[field];
  }
  const parsed = BruteForceSchema.safeParse(settings);
  if (parsed.success) return bruteForcePolicyOf(parsed.data);
  const issue = parsed.error.issues[0] as (typeof parsed.error.issues)[number];
  const field = POLICY_FIELDS.find((name) => SETTING_OF[name] === issue.path[0]);
  const why = describeIssue({ ...issue, path: [...SECTION_PATH, ...issue.path] });
  throw new RangeError(`brute-force policy ${field ?? issue.path.join('.')}: ${why}`);
}
