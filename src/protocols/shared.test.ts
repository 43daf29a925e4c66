import { describe, expect, it } from 'vitest';
import { codeForBackendError } from './shared.js';

describe('codeForBackendError', () => {
  it.each([
    [400, 'prompt is too long: 200001 tokens > 200000 maximum', 'context_length_exceeded'],
    [
      400,
      'The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).',
      'context_length_exceeded',
    ],
    [413, 'Request exceeds the context window', 'context_length_exceeded'],
    [
      400,
      'input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000, decrease input length or `max_tokens` and try again',
      'context_length_exceeded',
    ],
    [400, 'Your credit balance is too low to access the Anthropic API.', 'insufficient_quota'],
    [400, 'messages: field required', 'invalid_request'],
    [429, 'Number of request tokens has exceeded your per-minute rate limit', 'rate_limit_exceeded'],
    [500, 'prompt is too long', 'server_error'],
  ])('%i %j → %s', (status, message, code) => {
    expect(codeForBackendError(status, message)).toBe(code);
  });
});
