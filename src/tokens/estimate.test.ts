import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { describe, expect, it } from 'vitest';
import { CALIBRATION, estimateInputTokens } from './estimate.js';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, ROOT), 'utf8');

/** English prose and code from this repository: the docs, and the source of this folder's neighbours. */
const PROSE = ['README.md', 'docs/architecture.md', 'docs/reliability.md', 'docs/performance.md'].map(read);
const CODE = readdirSync(fileURLToPath(new URL('src/pipeline/', ROOT)))
  .filter((name) => name.endsWith('.ts'))
  .map((name) => read(`src/pipeline/${name}`));

const oneMessage = (text: string) => ({ model: 'm', messages: [{ role: 'user', content: text }] });

describe('estimateInputTokens', () => {
  it('gives fixed numbers for fixed requests, per backend family', async () => {
    const body = {
      model: 'm',
      system: 'You are a scientist',
      messages: [{ role: 'user', content: 'Hello, Claude' }],
    };
    expect(await estimateInputTokens(body, 'openai')).toBe(14);
    expect(await estimateInputTokens(body, 'anthropic')).toBe(15);
    expect(await estimateInputTokens(body, 'gemini')).toBe(10);
    const image = {
      model: 'm',
      messages: [
        {
          role: 'user',
          content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AAAA' } }],
        },
      ],
    };
    expect(await estimateInputTokens(image, 'anthropic')).toBe(3 + 3 + CALIBRATION.anthropic.perImage);
  });

  it('is never 0 for a request that holds anything, and 0 for one that holds nothing', async () => {
    expect(await estimateInputTokens(oneMessage(''), 'gemini')).toBeGreaterThan(0);
    expect(await estimateInputTokens(oneMessage('a'), 'openai')).toBeGreaterThan(0);
    expect(await estimateInputTokens({ contents: [{ parts: [{ text: 'x' }] }] }, 'gemini')).toBeGreaterThan(
      0,
    );
    expect(await estimateInputTokens({ model: 'm', messages: [] }, 'anthropic')).toBe(0);
  });

  for (const [kind, texts] of [
    ['prose', PROSE],
    ['code', CODE],
  ] as const) {
    it(`is within 15 percent of the o200k count on English ${kind}, short and long`, async () => {
      for (const text of [...texts, texts.join('\n\n').repeat(3)]) {
        const reference = o200k(text);
        const estimate = await estimateInputTokens(oneMessage(text), 'openai');
        expect(Math.abs(estimate / reference - 1)).toBeLessThan(0.15);
      }
    });
  }

  it('scales each family by its calibration factor', async () => {
    const text = PROSE[0]!;
    const openai = await estimateInputTokens(oneMessage(text), 'openai');
    const anthropic = await estimateInputTokens(oneMessage(text), 'anthropic');
    expect(anthropic / openai).toBeCloseTo(CALIBRATION.anthropic.factor, 2);
  });
});
