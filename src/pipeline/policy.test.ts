import { describe, expect, it } from 'vitest';
import { ProxyError } from '../proxy-error.js';
import { Redactor } from '../redaction/redactor.js';
import { NO_POLICIES, PolicyTable } from '../teams/policies.js';
import type { ChatExchange } from './exchange.js';
import { checkPolicy, modelListFilter, modelNotFound } from './policy.js';
import type { ChatRoute } from './route.js';

const redactor = new Redactor(['configured-secret-0123456789']);
const exchange = (authKeyName: string | null) => ({ authKeyName }) as ChatExchange;
const route = (requested: string, backend: string, model: string) =>
  ({ requested, backend: { name: backend }, model }) as unknown as ChatRoute;

const table = new PolicyTable(
  [{ name: 'alice', labels: ['team-a'], limits: { models: ['anthropic:*', 'gpt-4o'] } }, { name: 'env' }],
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

describe('checkPolicy', () => {
  it('lets a model on the allow-list through, and keys without a list', () => {
    expect(() =>
      checkPolicy(table, exchange('alice'), route('anthropic:claude', 'anthropic', 'claude'), redactor),
    ).not.toThrow();
    expect(() =>
      checkPolicy(table, exchange('alice'), route('gpt-4o', 'openai', 'gpt-4o'), redactor),
    ).not.toThrow();
    expect(() =>
      checkPolicy(table, exchange('env'), route('gemini:x', 'gemini', 'x'), redactor),
    ).not.toThrow();
    expect(() =>
      checkPolicy(table, exchange(null), route('gemini:x', 'gemini', 'x'), redactor),
    ).not.toThrow();
    expect(() =>
      checkPolicy(NO_POLICIES, exchange('alice'), route('gemini:x', 'gemini', 'x'), redactor),
    ).not.toThrow();
  });

  it('refuses another model with 404 model_not_found naming the model as the client wrote it', () => {
    const error = refusal(() =>
      checkPolicy(table, exchange('alice'), route('openai:gpt-5', 'openai', 'gpt-5'), redactor),
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
  it("lets through the models and route names of the key's allow-list, and is null without one", () => {
    const filter = modelListFilter(table, 'alice');
    if (filter === null) throw new Error('expected a filter');
    expect(filter('claude-x', 'anthropic')).toBe(true);
    expect(filter('gpt-4o', 'openai')).toBe(true);
    expect(filter('gpt-5', 'openai')).toBe(false);
    // Route names: a bare pattern names one; a backend:model glob names none.
    expect(filter('gpt-4o', null)).toBe(true);
    expect(filter('coder', null)).toBe(false);
    expect(modelListFilter(table, 'env')).toBeNull();
    expect(modelListFilter(table, null)).toBeNull();
    expect(modelListFilter(NO_POLICIES, 'alice')).toBeNull();
  });
});
