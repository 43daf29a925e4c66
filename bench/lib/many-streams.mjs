// The many-streams row (docs/performance.md): BENCH_MANY_STREAMS (2,000) streams opened within
// BENCH_MANY_STREAMS_RAMP_MS (2 s) through a fresh proxy to a slow upstream (bench/slow-upstream.mjs: BENCH_MANY_STREAMS_CHUNKS pieces
// BENCH_MANY_STREAMS_GAP_MS apart: 20 s by default), plus one quick non-streamed request once they are all sent,
// from a client process of its own (lib/quick-client.mjs), and the same request through the streams' own client.
// Reports the slowest stream (from its own start) against the time one stream takes, the latest first byte,
// the quick requests' times, the proxy's CPU time and RSS (before, peak, and after BENCH_IDLE_S of idle).
// Every stream must carry every piece the upstream sent (the echo of its prompt, whole) and its end.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { PROXY_KEY } from './constants.mjs';
import { CHAT_PATH } from './load.mjs';
import { cpuSeconds, forkServer, rssMb, startProject, startQuickClient, stopChild } from './processes.mjs';

/**
 * Issue targets: all done within 1.5× one stream's time, a quick request (from another client) within 1 s,
 * RSS peak ≤ 250 MB.
 */
export const MANY_STREAMS_TARGETS = { slowestVsOne: 1.5, quickMs: 1000, rssPeakMb: 250 };

export function manyStreamsConfig(env) {
  const count = Number(env.BENCH_MANY_STREAMS ?? 2000);
  return {
    count: Number.isInteger(count) && count >= 0 ? count : 2000,
    chunks: Number(env.BENCH_MANY_STREAMS_CHUNKS ?? 20),
    gapMs: Number(env.BENCH_MANY_STREAMS_GAP_MS ?? 1000),
    rampMs: Number(env.BENCH_MANY_STREAMS_RAMP_MS ?? 2000),
    idleS: Number(env.BENCH_IDLE_S ?? 60),
  };
}

const prompt = (i) => `stream ${i}: count to twenty, slowly`;

const QUICK_BODY = JSON.stringify({ model: 'quick', messages: [{ role: 'user', content: 'quick' }] });

/** The quick request from the quick client's process: resolves with its time, once answered 200 with the echo. */
function quickFromOwnProcess(quickClient, origin) {
  const answered = new Promise((resolve) => quickClient.child.once('message', resolve));
  quickClient.child.send({ origin, key: PROXY_KEY, body: QUICK_BODY });
  return answered.then(({ ms, status, text }) => {
    if (status !== 200 || !text.includes('echo: quick')) {
      throw new Error(`the quick client's request got ${status}: ${text.slice(0, 200)}`);
    }
    return ms;
  });
}

function streamBody(i) {
  return JSON.stringify({
    model: 'fault-drip',
    stream: true,
    messages: [{ role: 'user', content: prompt(i) }],
  });
}

/** The text of a chat-completions SSE body's content deltas, joined. */
function streamedContent(text) {
  let content = '';
  for (const line of text.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    content += JSON.parse(line.slice(6)).choices?.[0]?.delta?.content ?? '';
  }
  return content;
}

/** One stream, opened after `delayMs`: its first byte and its end, from its own start. */
async function oneStream(dispatcher, origin, i, delayMs) {
  await sleep(delayMs);
  const sentAt = performance.now();
  const res = await request(`${origin}${CHAT_PATH}`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PROXY_KEY}` },
    body: streamBody(i),
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  let first = -1;
  let text = '';
  for await (const chunk of res.body) {
    if (first < 0) first = performance.now() - sentAt;
    text += chunk;
  }
  if (res.statusCode !== 200 || !text.includes('[DONE]')) {
    throw new Error(`stream ${i}: status ${res.statusCode}, ${text.length} bytes, no [DONE]`);
  }
  // Every piece, in order: the fake provider's answer is the echo of the prompt, cut into pieces.
  if (streamedContent(text) !== `echo: ${prompt(i)}`) {
    throw new Error(`stream ${i}: pieces missing: ${JSON.stringify(streamedContent(text))}`);
  }
  return { first, end: performance.now() - sentAt };
}

/** Runs the row against a fresh instance of `main` (the project, or a baseline build); returns its figures. */
export async function runManyStreams({ workDir, settings, main, name }) {
  const upstream = await forkServer('slow-upstream.mjs', {
    SLOW_CHUNKS: String(settings.chunks),
    SLOW_GAP_MS: String(settings.gapMs),
  });
  const proxy = await startProject({
    upstreamOrigin: upstream.origin,
    logFile: path.join(workDir, `${name}-many-streams.log`),
    main,
  });
  // Started (and idle) before the streams (it is ready once started): a client of its own, as another
  // agent's short call comes from.
  const quickClient = await startQuickClient();
  // A long connect timeout: thousands of connections opened at once on a busy machine take a while.
  const dispatcher = new Agent({
    connections: settings.count + 16,
    pipelining: 1,
    connect: { timeout: 60_000 },
  });
  const rssStartMb = rssMb(proxy.pid);
  const cpuStart = cpuSeconds(proxy.pid);
  let peak = rssStartMb;
  const sampler = setInterval(() => {
    try {
      peak = Math.max(peak, rssMb(proxy.pid));
    } catch {
      // Gone: the last peak stands.
    }
  }, 100);
  const startedAt = performance.now();
  try {
    // Opened over `rampMs`, not in one burst: thousands of connects at once overflow the listen backlog,
    // and the dropped SYNs' retries (1 s, 3 s, 7 s…) would be measured instead of the proxy.
    const streams = Array.from({ length: settings.count }, (_, i) =>
      oneStream(dispatcher, proxy.origin, i, (i * settings.rampMs) / settings.count),
    );
    await sleep(settings.rampMs);
    // Settled together below; until then a failure must not surface as an unhandled rejection.
    const all = Promise.all(streams);
    all.catch(() => undefined);
    // A quick request once the streams are sent: answered at once unless it queues behind them. The one
    // judged comes from the quick client's own process; the same request through the streams' client (whose
    // event loop is busy opening them) is reported beside it.
    const quickOwn = quickFromOwnProcess(quickClient, proxy.origin);
    quickOwn.catch(() => undefined); // settled below
    const quickStart = performance.now();
    const quick = await request(`${proxy.origin}${CHAT_PATH}`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${PROXY_KEY}` },
      body: QUICK_BODY,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    await quick.body.text();
    const quickStreamsClientMs = performance.now() - quickStart;
    if (quick.statusCode !== 200) throw new Error(`${name}: the quick request got ${quick.statusCode}`);
    const quickMs = await quickOwn;
    const results = await all;
    const one = settings.chunks * settings.gapMs;
    const lastEnd = Math.max(...results.map((r) => r.end));
    const wallMs = performance.now() - startedAt;
    const latestFirst = Math.max(...results.map((r) => r.first));
    const cpuS = cpuSeconds(proxy.pid) - cpuStart;
    // The clients hang up; the proxy is left idle, as a team's proxy is after a busy hour.
    await dispatcher.close().catch(() => undefined);
    if (settings.idleS > 0) await sleep(settings.idleS * 1000);
    const rssIdleMb = rssMb(proxy.pid);
    return {
      name,
      count: settings.count,
      oneStreamMs: one,
      lastEndMs: lastEnd,
      wallMs,
      latestFirstMs: latestFirst,
      quickMs,
      quickStreamsClientMs,
      rssPeakMb: peak,
      rssStartMb,
      rssIdleMb,
      idleS: settings.idleS,
      cpuS,
    };
  } finally {
    clearInterval(sampler);
    await dispatcher.close().catch(() => undefined);
    await stopChild(quickClient.child);
    await stopChild(proxy.child);
    await stopChild(upstream.child);
  }
}

export function formatManyStreams(r) {
  return (
    `  ${r.name.padEnd(11)} ${r.count} streams of ${(r.oneStreamMs / 1000).toFixed(1)} s: slowest took ` +
    `${(r.lastEndMs / 1000).toFixed(1)} s, all done ${(r.wallMs / 1000).toFixed(1)} s after the first opened, ` +
    `latest first byte ${(r.latestFirstMs / 1000).toFixed(2)} s, ` +
    `quick request ${r.quickMs.toFixed(0)} ms (through the streams' client ${r.quickStreamsClientMs.toFixed(0)} ms), RSS ${r.rssStartMb.toFixed(0)} MB before, peak ` +
    `${r.rssPeakMb.toFixed(0)} MB, ${r.rssIdleMb.toFixed(0)} MB after ${r.idleS} s idle, ` +
    `CPU ${r.cpuS.toFixed(1)} s (${((r.cpuS * 1e6) / r.count).toFixed(0)} µs a stream)`
  );
}

/**
 * SUMMARY field: completion time over one stream's time, the quick request, the RSS peak, and the RSS after
 * the idle time next to the RSS before the streams (reported, not judged: "near the start" has no number).
 */
export function manyStreamsSummary(r) {
  const t = MANY_STREAMS_TARGETS;
  const slowOk = r.lastEndMs <= t.slowestVsOne * r.oneStreamMs;
  const quickOk = r.quickMs <= t.quickMs;
  const rssOk = r.rssPeakMb <= t.rssPeakMb;
  const v = (ok) => (ok ? '(ok)' : '(MISS)');
  return {
    field:
      `many_streams_${r.count}=${(r.lastEndMs / 1000).toFixed(1)}s/${(r.oneStreamMs / 1000).toFixed(1)}s${v(slowOk)} ` +
      `first_byte_max=${(r.latestFirstMs / 1000).toFixed(2)}s quick=${r.quickMs.toFixed(0)}ms${v(quickOk)} ` +
      `quick_streams_client=${r.quickStreamsClientMs.toFixed(0)}ms ` +
      `rss_peak=${r.rssPeakMb.toFixed(0)}MB${v(rssOk)} ` +
      `rss_start/idle_${r.idleS}s=${r.rssStartMb.toFixed(0)}/${r.rssIdleMb.toFixed(0)}MB ` +
      `cpu=${((r.cpuS * 1e6) / r.count).toFixed(0)}us/stream`,
    ok: slowOk && quickOk && rssOk,
  };
}
