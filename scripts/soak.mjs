// A bounded soak and chaos run of the real proxy (not part of `npm test`).
// Usage: npm run soak        (SOAK_SECONDS=600 npm run soak for a longer run)
//
// Starts dist/cli/main.js in front of the fake provider (test/fake-provider) as its OpenAI backend and
// drives it with a mix of streamed and whole completions through all three front-ends (OpenAI, Anthropic,
// Gemini), bad keys from many forwarded addresses, and clients that abort mid-stream. Every
// SOAK_CHAOS_EVERY seconds the upstream "crashes" (all its connections cut, port closed) and comes back:
// the proxy must answer well-formed errors meanwhile and recover by itself. Every SOAK_REPORT_EVERY
// seconds it prints the proxy's RSS and open file descriptors (/proc/<pid>/fd). It fails (exit 1) if,
// after warm-up, RSS or descriptors grow beyond a bound, if any answer is malformed, if a request fails
// outside a chaos window, or if the proxy dies.
//
// Knobs (env): SOAK_SECONDS (180), SOAK_CONCURRENCY (24), SOAK_WARMUP_SECONDS (min(30, 20% of the run)),
// SOAK_CHAOS_EVERY (45, 0 = off), SOAK_CHAOS_DOWN_MS (1500), SOAK_REPORT_EVERY (10),
// SOAK_MAX_RSS_GROWTH_MB (64), SOAK_MAX_FD_GROWTH (64).
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { startFakeProvider } from '../test/fake-provider/index.mjs';

const num = (name, fallback) => {
  const raw = process.env[name];
  const value = raw === undefined || raw === '' ? fallback : Number(raw);
  if (!Number.isFinite(value) || value < 0) {
    console.error(`soak: ${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return value;
};
const SECONDS = num('SOAK_SECONDS', 180);
const CONCURRENCY = Math.max(1, Math.floor(num('SOAK_CONCURRENCY', 24)));
const WARMUP = num('SOAK_WARMUP_SECONDS', Math.min(30, SECONDS * 0.2));
const CHAOS_EVERY = num('SOAK_CHAOS_EVERY', 45);
const CHAOS_DOWN_MS = num('SOAK_CHAOS_DOWN_MS', 1500);
const REPORT_EVERY = num('SOAK_REPORT_EVERY', 10);
const MAX_RSS_GROWTH_MB = num('SOAK_MAX_RSS_GROWTH_MB', 64);
const MAX_FD_GROWTH = num('SOAK_MAX_FD_GROWTH', 64);

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const KEY = 'soak-proxy-key-0123456789abcdef';
const STREAM_PIECES = 12;

// --- the upstream: the fake provider, echoing the last user message in paced pieces ------------------------
// Nothing recorded: a long run would otherwise keep every request in this process.
const upstream = await startFakeProvider({ chunks: STREAM_PIECES, pieceGapMs: 2, record: false });

// --- the proxy ----------------------------------------------------------------------------------------
const proxy = spawn(
  process.execPath,
  [
    CLI,
    '--port',
    '0',
    '--log-format',
    'json',
    '--log-level',
    'info',
    '--default-backend',
    'openai',
    '--timeout',
    '5',
    // Bad keys arrive from many forwarded addresses: the tracking table must stay bounded.
    '--trusted-proxy',
    '127.0.0.1',
    '--auth-brute-force-max-tracked',
    '2000',
  ],
  {
    env: {
      PATH: process.env.PATH ?? '',
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
      OPENAI_API_KEY: 'sk-soak-provider-key-000',
      OPENAI_API_BASE_URL: upstream.baseUrls.openai,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
let proxyErr = '';
proxy.stderr.on('data', (c) => (proxyErr += c));
let banner = '';
const base = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`proxy did not start:\n${proxyErr}\n${banner}`)), 15_000);
  const onData = (c) => {
    banner += c;
    const match = /"msg":"LLM Interactive Proxy listening on (https?:\/\/[^"]+)"/.exec(banner);
    if (match) {
      clearTimeout(timer);
      // Keep draining the logs so the child never blocks on a full pipe.
      proxy.stdout.off('data', onData);
      proxy.stdout.resume();
      resolve(match[1]);
    }
  };
  proxy.stdout.on('data', onData);
  proxy.once('exit', (code) => reject(new Error(`proxy exited with ${code}:\n${proxyErr}`)));
});
let proxyExited = null;
proxy.once('exit', (code, signal) => (proxyExited = { code, signal }));

// --- measuring -------------------------------------------------------------------------------------------
const rssMb = () => {
  const status = readFileSync(`/proc/${proxy.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
};
const fds = () => readdirSync(`/proc/${proxy.pid}/fd`).length;

// --- traffic ----------------------------------------------------------------------------------------------
const FRONTS = {
  openai: (prompt, stream) => ({
    path: '/v1/chat/completions',
    body: { model: 'soak-model', stream, messages: [{ role: 'user', content: prompt }] },
  }),
  anthropic: (prompt, stream) => ({
    path: '/anthropic/v1/messages',
    body: { model: 'soak-model', stream, max_tokens: 64, messages: [{ role: 'user', content: prompt }] },
  }),
  gemini: (prompt, stream) => ({
    path: `/v1beta/models/soak-model:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
    body: { contents: [{ role: 'user', parts: [{ text: prompt }] }] },
  }),
};
const FRONT_NAMES = Object.keys(FRONTS);

/** The answer text of a whole response or a stream, or null when it is not a complete, well-formed one. */
function answerText(front, contentType, text) {
  const pieces = [];
  const read = (data, event) => {
    if (front === 'openai') {
      pieces.push(data.choices?.[0]?.delta?.content ?? data.choices?.[0]?.message?.content ?? '');
      return false;
    }
    if (front === 'anthropic') {
      if (data.type === 'message') pieces.push(data.content.map((b) => b.text ?? '').join(''));
      if (event === 'content_block_delta') pieces.push(data.delta?.text ?? '');
      return event === 'message_stop' || data.type === 'message';
    }
    const candidate = data.candidates?.[0];
    pieces.push((candidate?.content?.parts ?? []).map((p) => p.text ?? '').join(''));
    return typeof candidate?.finishReason === 'string';
  };
  if (!contentType.includes('text/event-stream')) {
    const data = JSON.parse(text);
    const done = read(data, undefined);
    return front === 'openai' || done ? pieces.join('') : null;
  }
  let finished = false;
  for (const block of text.split('\n\n')) {
    if (!block.trim()) continue;
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = block
      .split('\n')
      .filter((l) => l.startsWith('data: '))
      .map((l) => l.slice(6))
      .join('\n');
    if (data === '[DONE]') {
      finished = true;
      continue;
    }
    const parsed = JSON.parse(data);
    if (parsed.error || event === 'error') return null;
    if (read(parsed, event)) finished = true;
  }
  return finished ? pieces.join('') : null;
}

const counts = { ok: 0, streamed: 0, badKey: 0, aborted: 0, chaosErrors: 0 };
const failures = [];
let chaos = false;
let lastChaosEnd = 0;
const inChaos = () => chaos || Date.now() - lastChaosEnd < 2000;
const fail = (what) => {
  if (failures.length < 20) failures.push(what);
  else if (failures.length === 20) failures.push('… more');
};

const agent = new Agent({ connections: CONCURRENCY * 2, keepAliveTimeout: 10_000 });
let sequence = 0;

async function oneRequest() {
  const n = sequence++;
  const kind = n % 10; // 0: bad key, 1: client abort, 2-5: whole, 6-9: stream
  const front = FRONT_NAMES[n % 3];
  const stream = kind >= 6 || kind === 1;
  const prompt = `soak ${n} ${'z'.repeat(n % 29)}`;
  const { path, body } = FRONTS[front](prompt, stream);
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${KEY}` };
  if (kind === 0) {
    headers.authorization = 'Bearer not-the-key';
    headers['x-forwarded-for'] = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  }
  const controller = new AbortController();
  const deadline = setTimeout(() => controller.abort(new Error('deadline')), 15_000);
  try {
    const res = await request(`${base}${path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      dispatcher: agent,
      signal: controller.signal,
    });
    if (kind === 1) {
      // Read a little, then walk away: the proxy must abort its upstream request and free everything.
      for await (const _ of res.body) break;
      controller.abort();
      counts.aborted++;
      return;
    }
    const text = await res.body.text();
    if (kind === 0) {
      if (res.statusCode === 401 || res.statusCode === 429) counts.badKey++;
      else fail(`bad key answered ${res.statusCode}`);
      return;
    }
    let answer = null;
    try {
      answer =
        res.statusCode === 200 ? answerText(front, String(res.headers['content-type'] ?? ''), text) : null;
    } catch {
      answer = null;
    }
    if (answer === `echo: ${prompt}`) {
      counts[stream ? 'streamed' : 'ok']++;
    } else if (inChaos()) {
      counts.chaosErrors++;
    } else {
      fail(`${front} ${stream ? 'stream' : 'whole'} #${n}: ${res.statusCode} ${text.slice(0, 200)}`);
    }
  } catch (err) {
    if (kind === 1 && controller.signal.aborted) return;
    if (inChaos()) counts.chaosErrors++;
    else fail(`${front} #${n}: ${err?.message ?? err}`);
  } finally {
    clearTimeout(deadline);
  }
}

const started = Date.now();
const until = started + SECONDS * 1000;
/** Highest RSS and descriptor count seen during warm-up (the baseline) and after it. */
const warmPeak = { rss: 0, fds: 0 };
const peak = { rss: 0, fds: 0 };
let warmedUp = false;
let last = { rss: 0, fds: 0 };

// Sampled every second: GC makes RSS swing, so the bound compares peaks, not two arbitrary moments.
function sample() {
  if (proxyExited !== null) return;
  last = { rss: rssMb(), fds: fds() };
  warmedUp = (Date.now() - started) / 1000 >= WARMUP;
  const into = warmedUp ? peak : warmPeak;
  into.rss = Math.max(into.rss, last.rss);
  into.fds = Math.max(into.fds, last.fds);
}

function report(final = false) {
  const elapsed = (Date.now() - started) / 1000;
  const c = counts;
  console.log(
    `${final ? 'final' : `t=${elapsed.toFixed(0)}s`}  rss=${last.rss.toFixed(1)}MB fds=${last.fds}  ` +
      `whole=${c.ok} streamed=${c.streamed} badKey=${c.badKey} aborted=${c.aborted} chaosErrors=${c.chaosErrors} ` +
      `failures=${failures.length}${warmedUp ? '' : '  (warming up)'}`,
  );
}

console.log(
  `soak: ${SECONDS}s, ${CONCURRENCY} clients, warm-up ${WARMUP}s, chaos every ${CHAOS_EVERY || '—'}s; proxy pid ${proxy.pid} at ${base}`,
);
const sampler = setInterval(sample, 1000);
const reporter = setInterval(report, REPORT_EVERY * 1000);
const chaosTimer =
  CHAOS_EVERY > 0
    ? setInterval(async () => {
        if (Date.now() + CHAOS_DOWN_MS + 3000 > until) return;
        chaos = true;
        console.log(`chaos: upstream down for ${CHAOS_DOWN_MS} ms`);
        await upstream.down();
        await new Promise((resolve) => setTimeout(resolve, CHAOS_DOWN_MS));
        await upstream.up();
        lastChaosEnd = Date.now();
        chaos = false;
        console.log('chaos: upstream back');
      }, CHAOS_EVERY * 1000)
    : null;

await Promise.all(
  Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < until && proxyExited === null) await oneRequest();
  }),
);
clearInterval(reporter);
clearInterval(sampler);
if (chaosTimer) clearInterval(chaosTimer);
await agent.close();
// Let idle connections and timers settle before the last measurement.
await new Promise((resolve) => setTimeout(resolve, 1500));
if (proxyExited === null) {
  sample();
  report(true);
}

// --- verdict -----------------------------------------------------------------------------------------------
const problems = [...failures];
if (proxyExited !== null) problems.unshift(`the proxy died: ${JSON.stringify(proxyExited)}\n${proxyErr}`);
if (warmedUp) {
  if (peak.rss - warmPeak.rss > MAX_RSS_GROWTH_MB) {
    problems.push(
      `RSS peaked ${(peak.rss - warmPeak.rss).toFixed(1)} MB above its warm-up peak (bound ${MAX_RSS_GROWTH_MB} MB)`,
    );
  }
  if (peak.fds - warmPeak.fds > MAX_FD_GROWTH) {
    problems.push(
      `open descriptors peaked ${peak.fds - warmPeak.fds} above warm-up (bound ${MAX_FD_GROWTH})`,
    );
  }
} else if (proxyExited === null) {
  problems.push('the run ended before warm-up: raise SOAK_SECONDS or lower SOAK_WARMUP_SECONDS');
}
if (counts.ok + counts.streamed === 0) problems.push('no request succeeded');

if (proxyExited === null) {
  proxy.kill('SIGTERM');
  const code = await new Promise((resolve) => proxy.once('exit', (c) => resolve(c)));
  if (code !== 0) problems.push(`graceful shutdown exited with ${code}`);
}
await upstream.close();

if (warmedUp) {
  console.log(
    `peaks: warm-up rss ${warmPeak.rss.toFixed(1)} MB / fds ${warmPeak.fds}; after warm-up rss ${peak.rss.toFixed(1)} MB / fds ${peak.fds}`,
  );
}
if (problems.length > 0) {
  console.error(`soak FAILED:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log('soak passed');
