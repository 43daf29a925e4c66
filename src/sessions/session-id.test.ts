import { describe, expect, it } from 'vitest';
import { sessionIdOf, sessionKey } from './session-id.js';

describe('sessionIdOf', () => {
  it('reads the headers agents send, in order', () => {
    expect(sessionIdOf({ 'x-session-id': 'a', 'x-claude-code-session-id': 'b' }, {})).toBe('a');
    expect(sessionIdOf({ 'x-claude-code-session-id': 'b', 'session-id': 'c' }, {})).toBe('b');
    expect(sessionIdOf({ 'session-id': 'c' }, { prompt_cache_key: 'd' })).toBe('c');
  });

  it("reads Claude Code's metadata.user_id suffix, then prompt_cache_key", () => {
    const userId = 'user_abc_account_def_session_1b2c3d4e-0000-4000-8000-000000000001';
    expect(sessionIdOf({}, { metadata: { user_id: userId } })).toBe('1b2c3d4e-0000-4000-8000-000000000001');
    expect(sessionIdOf({}, { metadata: { user_id: 'plain' }, prompt_cache_key: 'pck-1' })).toBe('pck-1');
    // Claude Code 2.1: JSON (test/fixtures/clients/claude-2.1.332).
    const json = '{"device_id":"5faa","account_uuid":"","session_id":"2a9bed98-c917-4f80-8506-746201afceda"}';
    expect(sessionIdOf({}, { metadata: { user_id: json } })).toBe('2a9bed98-c917-4f80-8506-746201afceda');
    expect(sessionIdOf({}, { metadata: { user_id: '{"session_id":"a b"}' }, prompt_cache_key: 'p' })).toBe(
      'p',
    );
    expect(sessionIdOf({}, { metadata: { user_id: '{not json' }, prompt_cache_key: 'p' })).toBe('p');
  });

  it('ignores ids that are empty, too long or not printable', () => {
    expect(sessionIdOf({ 'x-session-id': '' }, {})).toBeNull();
    expect(sessionIdOf({ 'x-session-id': 'x'.repeat(129) }, {})).toBeNull();
    expect(sessionIdOf({ 'x-session-id': 'a b' }, {})).toBeNull();
    expect(sessionIdOf({ 'x-session-id': ['a', 'b'] as unknown as string }, {})).toBeNull();
    expect(sessionIdOf({}, { prompt_cache_key: 42 })).toBeNull();
  });
});

describe('sessionKey', () => {
  it('keeps keys apart for the same session id', () => {
    expect(sessionKey('alice', 's1')).not.toBe(sessionKey('bob', 's1'));
    expect(sessionKey('alice', null)).not.toBe(sessionKey('alice', 's1'));
    expect(sessionKey(null, null)).toBe('\u0000');
  });
});
