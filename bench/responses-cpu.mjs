#!/usr/bin/env node
// The Responses pass-through stream against the chat pass-through stream, as CPU time per request of the
// proxy (utime + stime from /proc), for one or more builds side by side in one run: on a busy machine
// req/s is noise, CPU per request is not (docs/performance.md, "The Responses pass-through stream").
//
//   node bench/responses-cpu.mjs                                   # this checkout's dist/
//   BUILDS=base=/other/checkout/dist/cli/main.js,new=dist/cli/main.js node bench/responses-cpu.mjs
//   STREAM=0 KINDS=chat,responses node bench/responses-cpu.mjs    # whole answers; two of the kinds
//
// ROUNDS (5) rounds of DURATION (3) seconds per target, rotated so each takes every place in a round;
// 16 connections, 20-chunk streams from the canned mock; medians printed per build. Kinds: `chat` (chat
// completions passed through), `responses` / `responses+store` (the Responses API passed through, without
// and with `store`), `resp-xlate` (the Responses API translated to a chat-completions backend, `store`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PROXY_KEY, UPSTREAM_KEY } from './lib/constants.mjs';
import { measure, RESPONSES_PATH, responsesRequestBody } from './lib/load.mjs';
import {
  cpuSeconds,
  installCleanup,
  REPO_DIR,
  startMock,
  startProject,
  stopChild,
} from './lib/processes.mjs';

installCleanup();
const builds = (process.env.BUILDS ?? `this=${path.join(REPO_DIR, 'dist/cli/main.js')}`)
  .split(',')
  .map((spec) => spec.split('='));
const rounds = Number(process.env.ROUNDS ?? 5);
const durationS = Number(process.env.DURATION ?? 3);
const connections = 16;
const stream = process.env.STREAM !== '0';
const work = mkdtempSync(path.join(tmpdir(), 'responses-cpu-'));

const withStore = (store, model) => (stream) =>
  JSON.stringify({ ...JSON.parse(responsesRequestBody({ stream, model })), store });
const ALL_KINDS = [
  ['chat', undefined],
  ['responses', { path: RESPONSES_PATH, body: withStore(false) }],
  ['responses+store', { path: RESPONSES_PATH, body: withStore(true) }],
  // `openrouter:` names a chat-completions backend on the same mock.
  ['resp-xlate', { path: RESPONSES_PATH, body: withStore(true, 'openrouter:gpt-4o-mini') }],
];
const chosen = (process.env.KINDS ?? 'chat,responses,responses+store').split(',');
const KINDS = ALL_KINDS.filter(([kind]) => kind === 'chat' || chosen.includes(kind));

const mock = await startMock({ streamChunks: 20 });
const targets = [];
for (const [name, main] of builds) {
  const project = await startProject({
    upstreamOrigin: mock.origin,
    logFile: path.join(work, `${name}.log`),
    main,
    extraEnv: { OPENROUTER_API_KEY: UPSTREAM_KEY, OPENROUTER_API_BASE_URL: `${mock.origin}/v1` },
  });
  for (const [kind, request] of KINDS) targets.push({ name, kind, project, request });
}
const run = (t, seconds) =>
  measure({
    origin: t.project.origin,
    key: PROXY_KEY,
    stream,
    connections,
    durationS: seconds,
    request: t.request,
  });
for (const t of targets) await run(t, 1); // warm-up
const samples = new Map();
for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < targets.length; i++) {
    const t = targets[(i + r) % targets.length];
    const before = cpuSeconds(t.project.pid);
    const m = await run(t, durationS);
    if (m.non2xx || m.errors || m.timeouts) throw new Error(`${t.name} ${t.kind}: a failed request`);
    const cpuUs = ((cpuSeconds(t.project.pid) - before) * 1e6) / m.requests;
    const key = `${t.name} ${t.kind}`;
    if (!samples.has(key)) samples.set(key, { reqPerSec: [], cpuUs: [] });
    samples.get(key).reqPerSec.push(m.reqPerSec);
    samples.get(key).cpuUs.push(cpuUs);
    console.log(
      `round ${r + 1}/${rounds} ${key}: ${m.reqPerSec.toFixed(0)} req/s, ${cpuUs.toFixed(0)} µs CPU/request`,
    );
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
for (const [name] of builds) {
  const chat = samples.get(`${name} chat`);
  const parts = [`${name}: chat ${median(chat.cpuUs).toFixed(0)} µs`];
  for (const [kind] of KINDS.slice(1)) {
    const s = samples.get(`${name} ${kind}`);
    const cpu = median(s.cpuUs);
    const rps = median(s.reqPerSec) / median(chat.reqPerSec);
    parts.push(
      `${kind} ${cpu.toFixed(0)} µs (${(median(chat.cpuUs) / cpu).toFixed(2)}x chat; req/s ${rps.toFixed(2)}x)`,
    );
  }
  console.log(parts.join(', '));
}
for (const t of new Set(targets.map((t) => t.project))) await stopChild(t.child);
await stopChild(mock.child);
rmSync(work, { recursive: true, force: true });
