#!/usr/bin/env node
// Redaction throughput over realistic chat payloads (README, Key hygiene; target >= 100 MB/s,
// docs/performance.md). Run after `npm run build`: node bench/redaction.mjs [--seconds N]
import { randomBytes } from 'node:crypto';
import { Redactor } from '../dist/redaction/redactor.js';

const TARGET_MB_PER_S = 100;
const secondsArg = process.argv.indexOf('--seconds');
const SECONDS = secondsArg > 0 ? Number(process.argv[secondsArg + 1]) : 2;

// 20 configured secrets of the shapes a deployment has: proxy keys (base64url, base64 with + / =, readable)
// and provider keys.
const secrets = [
  ...Array.from({ length: 6 }, () => randomBytes(32).toString('base64url')),
  ...Array.from({ length: 4 }, () => randomBytes(32).toString('base64')),
  ...Array.from({ length: 3 }, (_, i) => `team-${i}-proxy-key-${randomBytes(6).toString('hex')}`),
  `sk-proj-${randomBytes(60).toString('base64url')}`,
  `sk-ant-api03-${randomBytes(70).toString('base64url')}`,
  `sk-or-v1-${randomBytes(32).toString('hex')}`,
  `sk-${randomBytes(36).toString('base64url')}`,
  `AIza${randomBytes(27).toString('base64url').slice(0, 35)}`,
  'your-secret-proxy-key',
  'shared-team-key',
];
const redactor = new Redactor(secrets);

const prose =
  'The quick brown fox jumps over the lazy dog. Refactor the task-list module so that risk-free changes ' +
  'land first; keep the bearer of bad news informed. Use `const result = await client.chat.completions' +
  '.create({ model, messages })` and return JSON. Skip tests marked slow; 42 items, 3.14 ratio. ';

function chatRequest(turns) {
  return JSON.stringify({
    model: 'gpt-4o-mini',
    stream: false,
    temperature: 0.2,
    messages: [
      { role: 'system', content: 'You are a careful coding assistant. ' + prose },
      ...Array.from({ length: turns }, (_, i) => ({
        role: i % 2 === 0 ? 'user' : 'assistant',
        content: prose.repeat(2 + (i % 3)),
      })),
    ],
  });
}

function chatResponse(paragraphs) {
  return JSON.stringify({
    id: 'chatcmpl-9xYz1234567890',
    object: 'chat.completion',
    created: 1_730_000_000,
    model: 'gpt-4o-mini-2024-07-18',
    choices: [
      {
        index: 0,
        finish_reason: 'stop',
        message: { role: 'assistant', content: prose.repeat(paragraphs) },
      },
    ],
    usage: { prompt_tokens: 812, completion_tokens: 455, total_tokens: 1267 },
  });
}

function withSecret(json, secret) {
  return json.replace('lazy dog.', `lazy dog. My key is ${secret} and Authorization: Bearer ${secret}.`);
}

// Mostly clean traffic, some payloads carrying secrets (that is what the fast path is tuned for).
const payloads = [
  chatRequest(4),
  chatRequest(10),
  chatResponse(8),
  chatResponse(20),
  chatRequest(6),
  chatResponse(12),
  withSecret(chatRequest(6), secrets[0]),
  withSecret(chatResponse(10), secrets[13]),
];

for (const p of payloads.slice(-2)) {
  const out = redactor.redact(p);
  if (secrets.some((s) => out.includes(s))) throw new Error('benchmark payload still contains a secret');
}

const payloadBytes = payloads.reduce((sum, p) => sum + Buffer.byteLength(p), 0);
let sink = 0;
const runFor = (ms) => {
  let bytes = 0;
  const start = performance.now();
  while (performance.now() - start < ms) {
    for (const p of payloads) sink += redactor.redact(p).length;
    bytes += payloadBytes;
  }
  return { bytes, ms: performance.now() - start };
};

runFor(300); // warm-up: let the regex and the loop get optimised
const { bytes, ms } = runFor(SECONDS * 1000);
const mbPerS = bytes / 1e6 / (ms / 1000);
const avgKb = payloadBytes / payloads.length / 1024;
console.log(
  `redaction: ${mbPerS.toFixed(1)} MB/s (target >= ${TARGET_MB_PER_S} MB/s; ${payloads.length} payloads, ` +
    `avg ${avgKb.toFixed(1)} KiB, ${secrets.length} secrets)`,
);
if (sink === 0) console.log('unreachable');
process.exitCode = mbPerS >= TARGET_MB_PER_S ? 0 : 1;
