import { describe, expect, it } from 'vitest';
import { NO_POLICIES, PolicyTable } from './policies.js';

describe('PolicyTable', () => {
  const table = new PolicyTable(
    [
      {
        name: 'alice',
        role: 'client',
        labels: ['team-a', 'no-policy'],
        expiresAtMs: 1_800_000_000_000,
        limits: { models: ['anthropic:*', 'coder'], rpm: 60, budget: { usd: 50, per: 'month' } },
      },
      { name: 'bob', labels: ['team-a'] },
      { name: 'ops', role: 'admin' },
    ],
    {
      'team-a': { rpm: 600, max_concurrent: 8, models: ['anthropic:*', 'openai:*'] },
      unused: { tpm: 1000 },
    },
  );

  it("gives a key its own limits first, then each label's shared ones", () => {
    const alice = table.policyFor('alice');
    expect(alice).toMatchObject({
      keyName: 'alice',
      role: 'client',
      labels: ['team-a', 'no-policy'],
      expiresAtMs: 1_800_000_000_000,
    });
    expect(alice?.scopes).toEqual([
      {
        scope: 'key',
        name: 'alice',
        id: 'key:alice',
        rpm: 60,
        tpm: null,
        maxConcurrent: null,
        budget: { usd: 50, per: 'month' },
      },
      {
        scope: 'label',
        name: 'team-a',
        id: 'label:team-a',
        rpm: 600,
        tpm: null,
        maxConcurrent: 8,
        budget: null,
      },
    ]);
    expect(table.policyFor('bob')?.scopes).toEqual([alice?.scopes[1]]);
    expect(table.policyFor('ops')).toEqual({
      keyName: 'ops',
      role: 'admin',
      labels: [],
      expiresAtMs: null,
      scopes: [],
      models: null,
      commands: true,
      guardrails: true,
    });
    expect(table.hasSwitchesOff).toBe(false);
    expect(table.allows('alice', 'commands')).toBe(true);
  });

  it("turns commands and the guard off per key: the key's own value first, then any label's false", () => {
    const switches = new PolicyTable(
      [
        { name: 'quiet', labels: ['team-a'] },
        { name: 'own-on', labels: ['team-a'], limits: { commands: true } },
        { name: 'own-off', limits: { guardrails: false } },
        { name: 'plain', labels: ['team-b'] },
      ],
      { 'team-a': { commands: false, guardrails: false }, 'team-b': { guardrails: true } },
    );
    const of = (name: string) => [switches.allows(name, 'commands'), switches.allows(name, 'guardrails')];
    expect(switches.hasSwitchesOff).toBe(true);
    expect(of('quiet')).toEqual([false, false]);
    expect(of('own-on')).toEqual([true, false]);
    expect(of('own-off')).toEqual([true, false]);
    expect(of('plain')).toEqual([true, true]);
    // Switches are not counters: no scope is charged for them.
    expect(switches.policyFor('own-off')?.scopes).toEqual([]);
    expect(switches.hasCounters).toBe(false);
    // A request without a key (trusted address, auth off) keeps both.
    expect([switches.allows(null, 'commands'), switches.allows('unknown', 'guardrails')]).toEqual([
      true,
      true,
    ]);
  });

  it('combines allow-lists: a model must pass the key’s and every label’s', () => {
    const alice = table.policyFor('alice')?.models;
    expect(alice?.allows({ requested: 'anthropic:claude', backend: 'anthropic', model: 'claude' })).toBe(
      true,
    );
    expect(alice?.allows({ requested: 'openai:gpt-4o', backend: 'openai', model: 'gpt-4o' })).toBe(false);
    const bob = table.policyFor('bob')?.models;
    expect(bob?.allows({ requested: 'openai:gpt-4o', backend: 'openai', model: 'gpt-4o' })).toBe(true);
    expect(bob?.allows({ requested: 'gemini:flash', backend: 'gemini', model: 'flash' })).toBe(false);
  });

  it('knows nothing of unknown names or key-less requests', () => {
    expect(table.policyFor('mallory')).toBeNull();
    expect(table.policyFor('trusted-ip')).toBeNull();
    expect(table.policyFor(null)).toBeNull();
    expect(table.policyFor('toString')).toBeNull();
  });

  it('says whether anything is configured, so requests skip the work when nothing is', () => {
    expect(table.hasModelRules).toBe(true);
    expect(table.hasCounters).toBe(true);
    expect(NO_POLICIES.hasModelRules).toBe(false);
    expect(NO_POLICIES.hasCounters).toBe(false);
    const plain = new PolicyTable([{ name: 'env' }, { name: 'dev', labels: ['team-b'] }], {});
    expect(plain.hasModelRules).toBe(false);
    expect(plain.hasCounters).toBe(false);
  });

  it('keeps the first key of a name, as key verification does', () => {
    const twice = new PolicyTable([{ name: 'a', role: 'admin' }, { name: 'a' }], {});
    expect(twice.policyFor('a')?.role).toBe('admin');
  });
});
