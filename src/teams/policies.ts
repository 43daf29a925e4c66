import type { PolicyLimits } from '../config/schema.js';
import { ModelAllowList } from './model-allow-list.js';

/**
 * Teams policies (README, Teams: policies): what each key may do beyond authenticating — its model allow-list
 * and the counters it is charged against (its own, and its labels', which the label's keys share). Built
 * once from the keys and `auth.policies` at start and on every key reload, so that a request looks its key
 * up in a map, and a proxy without policies does no per-request work at all (`hasModelRules`,
 * `hasCounters`).
 */

/** A key as the policies see it: the key entries of src/auth/keys.ts have this shape. */
export interface PolicyKey {
  readonly name: string;
  readonly role?: 'client' | 'admin' | undefined;
  readonly labels?: readonly string[] | undefined;
  readonly expiresAtMs?: number | undefined;
  /** The key's own limits (YAML `auth.api_keys[]`). */
  readonly limits?: PolicyLimits | undefined;
}

/**
 * One set of counters a request is charged against: the key's own (`scope: 'key'`) or a label's, shared by
 * every key with that label. `id` names the counters in the state store (`key:alice`, `label:team-a`).
 */
export interface LimitScope {
  readonly scope: 'key' | 'label';
  readonly name: string;
  readonly id: string;
  readonly rpm: number | null;
  readonly tpm: number | null;
  readonly maxConcurrent: number | null;
  readonly budget: { readonly usd: number; readonly per: 'day' | 'week' | 'month' | 'total' } | null;
}

export interface KeyPolicy {
  readonly keyName: string;
  readonly role: 'client' | 'admin';
  readonly labels: readonly string[];
  /** Epoch milliseconds; null: never expires. (The auth gate refuses an expired key before any policy.) */
  readonly expiresAtMs: number | null;
  /** The counters to charge: the key's own first, then each label's; only scopes with a counter. */
  readonly scopes: readonly LimitScope[];
  /** The model allow-list (the key's and its labels' together); null when every model is allowed. */
  readonly models: ModelAllowList | null;
  /** In-chat commands read for this key (`commands: false` turns them off). */
  readonly commands: boolean;
  /** The dangerous-command guard looks at this key's answers (`guardrails: false` turns it off). */
  readonly guardrails: boolean;
}

type Switch = 'commands' | 'guardrails';

/**
 * A per-key switch: the key's own value when it gives one, else off when any of its labels' policies turns it
 * off, else on.
 */
function switchOf(
  name: Switch,
  own: PolicyLimits | undefined,
  labels: readonly string[],
  labelPolicies: Readonly<Record<string, PolicyLimits>>,
): boolean {
  const given = own?.[name];
  if (given !== undefined) return given;
  return !labels.some(
    (label) => Object.hasOwn(labelPolicies, label) && labelPolicies[label]?.[name] === false,
  );
}

function scopeOf(scope: 'key' | 'label', name: string, limits: PolicyLimits | undefined): LimitScope | null {
  if (limits === undefined) return null;
  const { rpm, tpm, max_concurrent: maxConcurrent, budget } = limits;
  if (rpm === undefined && tpm === undefined && maxConcurrent === undefined && budget === undefined)
    return null;
  return Object.freeze({
    scope,
    name,
    id: `${scope}:${name}`,
    rpm: rpm ?? null,
    tpm: tpm ?? null,
    maxConcurrent: maxConcurrent ?? null,
    budget: budget ? Object.freeze({ ...budget }) : null,
  });
}

function policyOf(key: PolicyKey, labelPolicies: Readonly<Record<string, PolicyLimits>>): KeyPolicy {
  const labels = Object.freeze([...(key.labels ?? [])]);
  const ownLimits = key.limits;
  const scopes: LimitScope[] = [];
  const modelLists: Array<readonly string[]> = [];
  const own = scopeOf('key', key.name, ownLimits);
  if (own) scopes.push(own);
  if (ownLimits?.models) modelLists.push(ownLimits.models);
  for (const label of labels) {
    const limits = Object.hasOwn(labelPolicies, label) ? labelPolicies[label] : undefined;
    const shared = scopeOf('label', label, limits);
    if (shared) scopes.push(shared);
    if (limits?.models) modelLists.push(limits.models);
  }
  return Object.freeze({
    keyName: key.name,
    role: key.role ?? 'client',
    labels,
    expiresAtMs: key.expiresAtMs ?? null,
    scopes: Object.freeze(scopes),
    models: modelLists.length > 0 ? new ModelAllowList(modelLists) : null,
    commands: switchOf('commands', ownLimits, labels, labelPolicies),
    guardrails: switchOf('guardrails', ownLimits, labels, labelPolicies),
  });
}

export class PolicyTable {
  /** Whether any key has a model allow-list: without one the pipeline skips the check entirely. */
  readonly hasModelRules: boolean;
  /** Whether any key is charged against a counter (rpm, tpm, max_concurrent, budget). */
  readonly hasCounters: boolean;
  /** Whether any key has commands or the guard turned off: without one the pipeline looks nothing up. */
  readonly hasSwitchesOff: boolean;
  private readonly byName: ReadonlyMap<string, KeyPolicy>;

  constructor(keys: readonly PolicyKey[], labelPolicies: Readonly<Record<string, PolicyLimits>>) {
    const byName = new Map<string, KeyPolicy>();
    // The first key of a name wins, as it does when a key is verified (src/auth/keys.ts).
    for (const key of keys) if (!byName.has(key.name)) byName.set(key.name, policyOf(key, labelPolicies));
    this.byName = byName;
    const policies = [...byName.values()];
    this.hasModelRules = policies.some((policy) => policy.models !== null);
    this.hasCounters = policies.some((policy) => policy.scopes.length > 0);
    this.hasSwitchesOff = policies.some((policy) => !policy.commands || !policy.guardrails);
  }

  /** The policy of the key named `keyName`; null for a request with no key (trusted address, auth off). */
  policyFor(keyName: string | null): KeyPolicy | null {
    return keyName === null ? null : (this.byName.get(keyName) ?? null);
  }

  /** Whether `keyName`'s switch is on (a request without a key: always). One branch when no key turns one off. */
  allows(keyName: string | null, name: Switch): boolean {
    return !this.hasSwitchesOff || (this.policyFor(keyName)?.[name] ?? true);
  }

  /** Every key's policy (the usage report's budgets). */
  all(): Iterable<KeyPolicy> {
    return this.byName.values();
  }
}

/** No keys, no policies: auth disabled. */
export const NO_POLICIES = new PolicyTable([], {});
