import { describe, expect, it } from 'vitest';
import { lastUsageBlock, usageInText, usageOfAnswer, usageOfStream } from './usage.js';
import { seededRandom } from '../../test/helpers/seeded-random.js';

describe('usage blocks of every protocol', () => {
  it('reads each protocol’s block, cached prompt tokens apart from the input', () => {
    expect(
      usageOfAnswer('openai', {
        usage: { prompt_tokens: 100, completion_tokens: 20, prompt_tokens_details: { cached_tokens: 60 } },
      }),
    ).toEqual({ input: 40, output: 20, cacheRead: 60, cacheWrite: 0 });
    expect(
      usageOfAnswer('responses', {
        usage: { input_tokens: 50, output_tokens: 5, input_tokens_details: { cached_tokens: 10 } },
      }),
    ).toEqual({ input: 40, output: 5, cacheRead: 10, cacheWrite: 0 });
    expect(
      usageOfAnswer('anthropic', {
        usage: {
          input_tokens: 7,
          output_tokens: 3,
          cache_read_input_tokens: 100,
          cache_creation_input_tokens: 20,
        },
      }),
    ).toEqual({ input: 7, output: 3, cacheRead: 100, cacheWrite: 20 });
    expect(
      usageOfAnswer('gemini', {
        usageMetadata: {
          promptTokenCount: 30,
          cachedContentTokenCount: 10,
          candidatesTokenCount: 4,
          thoughtsTokenCount: 6,
        },
      }),
    ).toEqual({ input: 20, output: 10, cacheRead: 10, cacheWrite: 0 });
    expect(usageOfAnswer('openai', { usage: null })).toBeNull();
  });

  it('finds the last usage object in text, passing over nulls, strings and cut tails', () => {
    const text =
      'data: {"usage":null,"choices":[{"delta":{"content":"\\"usage\\":{\\"prompt_tokens\\":99}"}}]}\n\n' +
      'data: {"choices":[],"usage" : {"prompt_tokens":3,"completion_tokens":4}}\n\n' +
      'data: {"usage":{"prompt_tok';
    expect(usageInText('openai', text)).toEqual({ input: 3, output: 4, cacheRead: 0, cacheWrite: 0 });
    expect(lastUsageBlock('openai', '"usage":null')).toBeNull();
    expect(lastUsageBlock('gemini', '{"usageMetadata":{"promptTokenCount":2}}')).toEqual({
      promptTokenCount: 2,
    });
  });

  it('finds the block a backward search finds, in random tails (fuzz)', () => {
    /** The reading before it searched forwards: the last `"key"` whose `:{…}` parses, searching back. */
    const backwards = (key: string, text: string): unknown => {
      const needle = `"${key}"`;
      for (
        let at = text.lastIndexOf(needle);
        at >= 0;
        at = at === 0 ? -1 : text.lastIndexOf(needle, at - 1)
      ) {
        const rest = /^\s*:\s*/.exec(text.slice(at + needle.length));
        if (rest === null || text[at + needle.length + rest[0].length] !== '{') continue;
        const from = at + needle.length + rest[0].length;
        for (let end = from + 1; end <= text.length; end++) {
          try {
            const block: unknown = JSON.parse(text.slice(from, end));
            if (typeof block === 'object' && block !== null) return block;
          } catch {
            // Not yet a whole object.
          }
        }
      }
      return null;
    };
    const { random, pick } = seededRandom(0x6a09e667);
    const PIECES = [
      'data: {"usage":null}\n\n',
      '"usage": {"prompt_tokens":1,"completion_tokens":2}',
      '"usage":{"prompt_tokens":3}}',
      '"usage":{"prompt_tokens":',
      '{"t":"\\"usage\\":{\\"x\\":1}"}',
      'usage":{"a":1}',
      '"usageMetadata":{"promptTokenCount":5}',
      '"usages":{"b":2}',
      'data: {"choices":[{"delta":{"content":"tok"}}]}\n\n',
    ];
    for (let round = 0; round < 2000; round++) {
      const text = Array.from({ length: Math.floor(random() * 6) }, () => pick(PIECES)).join('');
      const cut = text.slice(Math.floor(random() * 12));
      for (const [protocol, key] of [
        ['openai', 'usage'],
        ['gemini', 'usageMetadata'],
      ] as const)
        expect([cut, lastUsageBlock(protocol, cut)]).toEqual([cut, backwards(key, cut)]);
    }
  });

  it('joins Anthropic’s message_start input with its last message_delta output', () => {
    const head =
      'event: message_start\ndata: {"type":"message_start","message":{"content":[],"usage":{"input_tokens":12,"cache_read_input_tokens":5,"output_tokens":1}}}\n\n';
    const tail = 'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":9}}\n\n';
    expect(usageOfStream('anthropic', head, tail)).toEqual({
      input: 12,
      output: 9,
      cacheRead: 5,
      cacheWrite: 0,
    });
    // One chunk holding both: the head's first block, the tail's last.
    expect(usageOfStream('anthropic', head + tail, head + tail)).toEqual({
      input: 12,
      output: 9,
      cacheRead: 5,
      cacheWrite: 0,
    });
    expect(usageOfStream('anthropic', '', '')).toBeNull();
  });
});
