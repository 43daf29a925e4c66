/**
 * Token counting (README, Token counting): how long the local estimate takes for a 100k-token request, and
 * how close it comes to the exact o200k and cl100k counts, on English prose (this repository's docs) and code
 * (its source). Measures dist/: run `npm run build` first. Prints numbers; asserts nothing.
 *
 *   node bench/token-count.mjs
 */
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { countTokens as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';
import { countTokens as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { estimateInputTokens } from '../dist/tokens/estimate.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const files = (dir, ext) =>
  readdirSync(`${root}/${dir}`, { recursive: true, encoding: 'utf8' })
    .filter((name) => name.endsWith(ext) && !name.endsWith('.test.ts'))
    .sort()
    .map((name) => readFileSync(`${root}/${dir}/${name}`, 'utf8'));
const prose = [readFileSync(`${root}/README.md`, 'utf8'), ...files('docs', '.md'), ...files('bench', '.md')];
const code = files('src', '.ts');

const oneMessage = (text) => ({ model: 'm', messages: [{ role: 'user', content: text }] });
const AS_TEXT = { disallowedSpecial: new Set() };

/**
 * The estimate's error against OpenAI's count of a one-message chat request, per text: the exact o200k count
 * of the text plus the chat format's framing (3 tokens per message, 3 to prime the reply).
 */
async function accuracy(texts) {
  const errors = [];
  for (const text of texts) {
    const estimate = await estimateInputTokens(oneMessage(text), 'openai');
    errors.push((estimate / (o200k(text, AS_TEXT) + 6) - 1) * 100);
  }
  errors.sort((a, b) => a - b);
  const at = (q) => errors[Math.min(errors.length - 1, Math.floor(q * errors.length))].toFixed(1);
  return `min ${at(0)} %, median ${at(0.5)} %, max ${errors.at(-1).toFixed(1)} % over ${errors.length} files`;
}

console.log('accuracy of the estimate (OpenAI family) against exact o200k, one message per file:');
console.log(`  prose: ${await accuracy(prose)}`);
console.log(`  code:  ${await accuracy(code)}`);

// A 100k-token request: a coding agent's context, prose and code in many messages.
const pieces = [...prose, ...code];
const messages = [];
let tokens = 0;
for (let i = 0; tokens < 100_000; i++) {
  const text = pieces[i % pieces.length];
  messages.push({ role: i % 2 === 0 ? 'user' : 'assistant', content: text });
  tokens += o200k(text, AS_TEXT);
}
if (messages.length % 2 === 0) messages.push({ role: 'user', content: 'Go on.' });
const body = { model: 'm', system: 'You are a careful coding agent.', messages };
const allText = JSON.stringify(messages).length;
const estimate = await estimateInputTokens(body, 'openai');
console.log(
  `\n100k-token request: ${messages.length} messages, ${(allText / 1e6).toFixed(2)} MB of JSON; o200k ${tokens}, ` +
    `cl100k ${messages.reduce((n, m) => n + cl100k(m.content, AS_TEXT), 0)}, estimate ${estimate} ` +
    `(${((estimate / tokens - 1) * 100).toFixed(1)} %)`,
);
const times = [];
for (let i = 0; i < 200; i++) {
  const started = performance.now();
  await estimateInputTokens(body, i % 3 === 0 ? 'openai' : i % 3 === 1 ? 'anthropic' : 'gemini');
  times.push(performance.now() - started);
}
times.sort((a, b) => a - b);
const q = (p) => times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(2);
console.log(
  `estimate time over ${times.length} runs: median ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${q(1)} ms`,
);
const exactStart = performance.now();
for (const m of messages) cl100k(m.content, AS_TEXT);
console.log(`(counting it exactly with cl100k instead: ${(performance.now() - exactStart).toFixed(0)} ms)`);
