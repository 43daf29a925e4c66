import { describe, expect, it } from 'vitest';
import { BackendRegistry } from '../backends/registry.js';
import type { Backend } from '../backends/types.js';
import { ProxyError } from '../proxy-error.js';
import { Redactor } from '../redaction/redactor.js';
import { NO_POLICIES, PolicyTable } from '../teams/policies.js';
import type { ChatExchange } from './exchange.js';
import { checkModelPolicy, modelListFilter, modelNotFound, refusedModel } from './policy.js';

const redactor = new Redactor(['configured-secret-0123456789']);
const exchange = (authKeyName: string | null) => ({ authKeyName }) as ChatExchange;
const backend = (name: string, missingCredential: string | null = null) =>
  ({ name, missingCredential }) as unknown as Backend;
/** openai is the default backend; gemini has no key, so no request can go there. */
const registry = new BackendRegistry(
  [backend('openai'), backend('anthropic'), backend('gemini', 'GEMINI_API_KEY')],
  'openai',
);
const single = (model: string) => ({ name: null, elements: [model] });

const table = new PolicyTable(
  [
    { name: 'alice', labels: ['team-a'], limits: { models: ['anthropic:*', 'gpt-4o', 'coder'] } },
    { name: 'bob', limits: { models: ['claude-*'] } },
    { name: 'env' },
  ],
  { 'team-a': { rpm: 10 } },
);

function refusal(run: () => void): ProxyError {
  try {
    run();
  } catch (error) {
    return error as ProxyError;
  }
  throw new Error('expected a refusal');
}

describe('refusedModel', () => {
  const refused = (key: string | null, named: { name: string | null; elements: readonly string[] }) =>
    refusedModel(table, key, named, registry);

  it('judges a model as the backend it goes to and the model sent there', () => {
    expect(refused('alice', single('anthropic:claude-sonnet-4-5'))).toBeNull();
    // A bare model is one of the default backend.
    expect(refused('alice', single('gpt-4o'))).toBeNull();
    expect(refused('alice', single('openai:gpt-4o'))).toBeNull();
    expect(refused('alice', single('openai:gpt-5'))).toBe('openai:gpt-5');
    // A bare glob: that model on any backend.
    expect(refused('bob', single('anthropic:claude-sonnet-4-5'))).toBeNull();
    expect(refused('bob', single('claude-x'))).toBeNull();
    expect(refused('bob', single('gpt-4o'))).toBe('gpt-4o');
  });

  it("judges each element of a chain, naming the first refused; a glob never spans a chain's elements", () => {
    expect(refused('alice', { name: null, elements: ['anthropic:a', 'gpt-4o'] })).toBeNull();
    expect(refused('alice', { name: null, elements: ['anthropic:a', 'openai:gpt-5', 'x'] })).toBe(
      'openai:gpt-5',
    );
    // `claude-*` would match the whole text `claude-x|openai:gpt-5`.
    expect(refused('bob', { name: null, elements: ['claude-x', 'openai:gpt-5'] })).toBe('openai:gpt-5');
  });

  it('lets a route through by its name, or by every one of its elements', () => {
    expect(refused('alice', { name: 'coder', elements: ['openai:gpt-5'] })).toBeNull();
    expect(refused('alice', { name: 'pair', elements: ['anthropic:a', 'anthropic:b'] })).toBeNull();
    expect(refused('alice', { name: 'mixed', elements: ['anthropic:a', 'openai:gpt-5'] })).toBe('mixed');
    expect(refused('bob', { name: 'coder', elements: ['openai:gpt-5'] })).toBe('coder');
  });

  it('does not judge an element no request can be sent to (its backend has no key)', () => {
    expect(refused('bob', { name: null, elements: ['gemini:gemini-2.5-pro', 'claude-x'] })).toBeNull();
  });

  it('lets everything through for a key without a list, no key, or no lists at all', () => {
    expect(refused('env', single('openai:gpt-5'))).toBeNull();
    expect(refused(null, single('openai:gpt-5'))).toBeNull();
    expect(refusedModel(NO_POLICIES, 'alice', single('openai:gpt-5'), registry)).toBeNull();
  });
});

describe('checkModelPolicy', () => {
  it('refuses a model with 404 model_not_found naming it as the client wrote it', () => {
    expect(() =>
      checkModelPolicy(table, exchange('alice'), single('anthropic:claude'), registry, redactor),
    ).not.toThrow();
    const error = refusal(() =>
      checkModelPolicy(table, exchange('alice'), single('openai:gpt-5'), registry, redactor),
    );
    expect(error).toBeInstanceOf(ProxyError);
    expect(error.status).toBe(404);
    expect(error.code).toBe('model_not_found');
    expect(error.param).toBe('model');
    expect(error.message).toBe("The model 'openai:gpt-5' does not exist or you do not have access to it.");
  });
});

describe('modelNotFound', () => {
  it('never echoes a secret pasted as the model, and cuts a long name short', () => {
    expect(modelNotFound('x:configured-secret-0123456789', redactor).message).not.toContain(
      'configured-secret',
    );
    const long = modelNotFound('m'.repeat(500), redactor).message;
    expect(long).toBe(`The model '${'m'.repeat(200)}…' does not exist or you do not have access to it.`);
  });
});

describe('modelListFilter', () => {
  it("lets through the models and routes of the key's allow-list, and is null without one", () => {
    const chains: Record<string, readonly string[]> = {
      coder: ['openai:gpt-5'],
      pair: ['anthropic:a', 'anthropic:b'],
      mixed: ['anthropic:a', 'openai:gpt-5'],
    };
    const routes = { chain: (name: string) => chains[name] };
    const filter = modelListFilter(table, 'alice', routes, registry);
    if (filter === null) throw new Error('expected a filter');
    expect(filter('claude-x', 'anthropic')).toBe(true);
    expect(filter('gpt-4o', 'openai')).toBe(true);
    expect(filter('gpt-5', 'openai')).toBe(false);
    // Routes, judged as a request naming them: by name, or by every element.
    expect(filter('coder', null)).toBe(true);
    expect(filter('pair', null)).toBe(true);
    expect(filter('mixed', null)).toBe(false);
    expect(modelListFilter(table, 'env', routes, registry)).toBeNull();
    expect(modelListFilter(table, null, routes, registry)).toBeNull();
    expect(modelListFilter(NO_POLICIES, 'alice', routes, registry)).toBeNull();
  });
});
