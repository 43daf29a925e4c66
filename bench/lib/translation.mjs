// The translation rows (docs/performance.md, "Translation"): each client protocol (OpenAI chat, Anthropic,
// Gemini) reaching each backend protocol (the openai, anthropic and gemini backends, all pointed at the canned
// mock) through one project instance — six translated pairs and three same-protocol paths, non-streaming and
// streaming — plus one translated stream through a second instance with the wire capture on, against the same
// stream through a third with it off. Rounds with the order rotated, as the other parts; each pair is judged by
// its ratio to the same-protocol path of the same client, the capture pair by its ratio to the capture-off
// instance, taken within each round (the median of the rounds' ratios).
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { MOCK_ANSWER_MARKER, PROXY_KEY, UPSTREAM_KEY } from './constants.mjs';
import { fmt, verdict } from './format.mjs';
import { failuresOf, measureRun } from './load.mjs';
import { cpuSeconds, rssMb, startMock, startProject, stopChild } from './processes.mjs';
import { RSS_TARGET_MB } from './rss.mjs';
import { median } from './stats.mjs';

/** Translated streams ≥ 0.7× the same-protocol stream, non-streaming ≥ 0.8×; capture on ≥ 0.7× off. */
export const TRANSLATION_TARGETS = { stream: 0.7, nonstream: 0.8, capture: 0.7 };

export const PROTOCOLS = ['openai', 'anthropic', 'gemini'];

/** The model a client names to reach each backend (the `backend:` prefix picks it). */
export const BACKEND_MODELS = {
  openai: 'openai:gpt-4o-mini',
  anthropic: 'anthropic:claude-3-5-haiku-20241022',
  gemini: 'gemini:gemini-2.0-flash',
};

const SYSTEM = 'You are a helpful assistant. Answer briefly and precisely.';
const QUESTION =
  'Summarise the trade-offs between connection pooling and per-request connections for an HTTP reverse ' +
  'proxy in two sentences.';

/**
 * Each client protocol's request, as its official SDK sends it: path, headers (its own key header) and body.
 * The same small request as the main scenarios (`lib/load.mjs`), in each protocol's shape.
 */
export const CLIENTS = {
  openai: (model, stream) => ({
    path: '/v1/chat/completions',
    headers: { authorization: `Bearer ${PROXY_KEY}` },
    body: {
      model,
      stream,
      temperature: 0.2,
      messages: [
        { role: 'system', content: SYSTEM },
        { role: 'user', content: QUESTION },
      ],
    },
  }),
  anthropic: (model, stream) => ({
    path: '/anthropic/v1/messages',
    headers: { 'x-api-key': PROXY_KEY, 'anthropic-version': '2023-06-01' },
    body: {
      model,
      max_tokens: 1024,
      stream,
      temperature: 0.2,
      system: SYSTEM,
      messages: [{ role: 'user', content: QUESTION }],
    },
  }),
  gemini: (model, stream) => ({
    path: `/v1beta/models/${model}:${stream ? 'streamGenerateContent?alt=sse' : 'generateContent'}`,
    headers: { 'x-goog-api-key': PROXY_KEY },
    body: {
      systemInstruction: { parts: [{ text: SYSTEM }] },
      contents: [{ role: 'user', parts: [{ text: QUESTION }] }],
      generationConfig: { temperature: 0.2 },
    },
  }),
};

/** A pair's name: `anthropic>openai` is an Anthropic client answered by the openai backend. */
export const pairName = (client, backend) => `${client}>${backend}`;

/** The answer's text, whole, in the client's protocol. */
const WHOLE_TEXT = {
  openai: (json) => json.choices?.[0]?.message?.content,
  anthropic: (json) => json.content?.[0]?.text,
  gemini: (json) => json.candidates?.[0]?.content?.parts?.map((p) => p.text).join(''),
};

/** A stream event's text, and whether an event is the stream's proper end, in the client's protocol. */
const STREAM_READ = {
  openai: {
    text: (event) => event.choices?.[0]?.delta?.content ?? '',
    end: (events, last) => last === '[DONE]',
  },
  anthropic: {
    text: (event) => (event.type === 'content_block_delta' ? (event.delta?.text ?? '') : ''),
    end: (events) => events.at(-1)?.type === 'message_stop',
  },
  gemini: {
    text: (event) => (event.candidates?.[0]?.content?.parts ?? []).map((p) => p.text ?? '').join(''),
    end: (events) => typeof events.at(-1)?.candidates?.[0]?.finishReason === 'string',
  },
};

/** The text of a whole canned answer's stream: the marker, then `tok1 ` … as the mock sends them. */
export function streamedText(chunks) {
  let text = `${MOCK_ANSWER_MARKER} `;
  for (let i = 1; i < chunks; i++) text += `tok${i} `;
  return text;
}

/** Reads an SSE body in the client's protocol: every JSON event, the text they carry, and a proper end. */
export function readStream(client, body) {
  const data = body
    .split('\n')
    .map((line) => line.trimEnd())
    .filter((line) => line.startsWith('data: '))
    .map((line) => line.slice(6));
  const last = data.at(-1);
  const events = data.filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
  const read = STREAM_READ[client];
  return { text: events.map(read.text).join(''), ended: read.end(events, last), events };
}

async function post(origin, req) {
  const res = await request(`${origin}${req.path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...req.headers },
    body: JSON.stringify(req.body),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

/** Before any measurement: 200 with the mock's text, whole, and streamed complete (every piece, its end). */
async function verifyTarget(target, streamChunks) {
  const fail = (what) => {
    throw new Error(`verification failed for ${target.name}: ${what}`);
  };
  const whole = await post(target.origin, target.request(false));
  if (whole.status !== 200)
    fail(`non-streaming answer has status ${whole.status}: ${whole.text.slice(0, 300)}`);
  const text = WHOLE_TEXT[target.client](JSON.parse(whole.text));
  if (typeof text !== 'string' || !text.startsWith(`${MOCK_ANSWER_MARKER}: `)) fail('unexpected content');
  const streamed = await post(target.origin, target.request(true));
  if (streamed.status !== 200)
    fail(`streaming answer has status ${streamed.status}: ${streamed.text.slice(0, 300)}`);
  if (!String(streamed.headers['content-type']).includes('text/event-stream')) fail('stream is not SSE');
  const read = readStream(target.client, streamed.text);
  if (read.text !== streamedText(streamChunks))
    fail(`streamed text is not the mock's: ${read.text.slice(0, 200)}`);
  if (!read.ended) fail('stream does not end as its protocol ends one');
}

/** One autocannon run of a target's request; throughput, latency and errors (the caller judges them). */
async function measureTarget(target, stream, connections, durationS) {
  const req = target.request(stream);
  return measureRun({
    url: `${target.origin}${req.path}`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...req.headers },
    body: JSON.stringify(req.body),
    connections,
    pipelining: 1,
    timeout: 10,
    duration: durationS,
  });
}

/**
 * The targets: every client × backend pair on the project (each judged against its client's same-protocol
 * path), and the capture pair on the capture instance, judged against the same pair on an instance of its own
 * with capture off. That reference is not the project's pair: the project serves all nine paths and never
 * pauses, while an instance serving one pair sits idle while the others run — and a Node process comes out of
 * a long idle gap recompiling what a full collection in the gap dropped (docs/performance.md, "The capture
 * instance's idle gaps"). Two instances that differ in capture alone, idle alike, compare capture alone.
 */
export function translationTargets({ project, captured, uncaptured, capturePair }) {
  const targets = [];
  for (const client of PROTOCOLS) {
    for (const backend of PROTOCOLS) {
      targets.push({
        name: pairName(client, backend),
        client,
        backend,
        origin: project.origin,
        pid: project.pid,
        reference: pairName(client, client),
        request: (stream) => CLIENTS[client](BACKEND_MODELS[backend], stream),
      });
    }
  }
  const [client, backend] = capturePair.split('>');
  if (!CLIENTS[client] || !BACKEND_MODELS[backend]) {
    throw new Error(
      `BENCH_XLATE_CAPTURE_PAIR: '${capturePair}' is not client>backend (openai, anthropic, gemini)`,
    );
  }
  const request = (stream) => CLIENTS[client](BACKEND_MODELS[backend], stream);
  const off = `capture-off:${capturePair}`;
  targets.push(
    {
      name: off,
      client,
      backend,
      origin: uncaptured.origin,
      pid: uncaptured.pid,
      reference: off,
      captureOff: true,
      streamOnly: true,
      request,
    },
    {
      name: `capture:${capturePair}`,
      client,
      backend,
      origin: captured.origin,
      pid: captured.pid,
      reference: off,
      capture: true,
      streamOnly: true,
      request,
    },
  );
  return targets;
}

/**
 * Rows of one scenario: per target, per round, req/s, latency and CPU µs per request. `order` rotates by one
 * target each round, so no target keeps its place.
 */
async function measureRounds(targets, scenario, settings) {
  const runs = new Map(targets.map((t) => [t.name, []]));
  for (let round = 1; round <= settings.rounds; round++) {
    const shift = (round - 1) % targets.length;
    const order = [...targets.slice(shift), ...targets.slice(0, shift)];
    for (const target of order) {
      // The capture pair's two instances sit idle while the nine paths run (and through the whole
      // non-streaming scenario before their first round), and a full collection in a gap drops optimised
      // code whose objects died, recompiled in the next burst (docs/performance.md, "The capture instance's
      // idle gaps"). As in the main part (bench/README.md, "Idle gaps"): the same unmeasured load first, on
      // every target, so that a ratio compares the targets more than how each came out of its gap.
      if (settings.preRunS > 0) {
        const warm = await measureTarget(target, scenario.stream, scenario.connections, settings.preRunS);
        const problems = failuresOf(warm);
        if (problems.length > 0) throw new Error(`${target.name} pre-run: ${problems.join('; ')}`);
      }
      const cpuBefore = cpuSeconds(target.pid);
      const stats = await measureTarget(target, scenario.stream, scenario.connections, settings.durationS);
      const problems = failuresOf(stats);
      if (problems.length > 0) {
        throw new Error(
          `${target.name} ${scenario.id}: ${problems.join('; ')} — refusing to report these numbers`,
        );
      }
      const cpuUs = ((cpuSeconds(target.pid) - cpuBefore) * 1e6) / stats.requests;
      runs.get(target.name).push({ ...stats, cpuUs });
      console.log(
        `  round ${round}/${settings.rounds} ${scenario.id.padEnd(20)} ${target.name.padEnd(26)} ` +
          `${fmt.rps(stats.reqPerSec).padStart(7)} req/s  mean ${fmt.ms(stats.mean)} ms  ` +
          `p99 ${fmt.ms(stats.p99)} ms  CPU ${cpuUs.toFixed(0)} µs/request`,
      );
      await sleep(200);
    }
  }
  return runs;
}

/**
 * Per target of a scenario: medians of req/s, latency and CPU, and its ratio to its reference (the
 * same-protocol path of its client; for the capture target, the same pair on the capture-off instance), the
 * median of the per-round ratios.
 */
export function scenarioRows(targets, runs) {
  return targets
    .filter((t) => runs.has(t.name))
    .map((t) => {
      const own = runs.get(t.name);
      const ref = runs.get(t.reference);
      const ratios = own.map((run, i) => run.reqPerSec / ref[i].reqPerSec);
      return {
        name: t.name,
        client: t.client,
        backend: t.backend,
        reference: t.reference,
        capture: Boolean(t.capture),
        captureOff: Boolean(t.captureOff),
        reqPerSec: median(own.map((r) => r.reqPerSec)),
        mean: median(own.map((r) => r.mean)),
        p99: median(own.map((r) => r.p99)),
        cpuUs: median(own.map((r) => r.cpuUs)),
        refCpuUs: median(ref.map((r) => r.cpuUs)),
        ratio: median(ratios),
      };
    });
}

export function printScenario(scenario, rows, rounds) {
  console.log(`\n${scenario.id} (${scenario.label}) — medians of ${rounds} rounds; ratios within rounds`);
  console.log(
    `  ${'client>backend'.padEnd(26)}${'req/s'.padStart(9)}${'mean ms'.padStart(10)}${'p99 ms'.padStart(10)}` +
      `${'CPU µs/req'.padStart(12)}   vs`,
  );
  for (const row of rows) {
    console.log(
      `  ${row.name.padEnd(26)}${fmt.rps(row.reqPerSec).padStart(9)}${fmt.ms(row.mean).padStart(10)}` +
        `${fmt.ms(row.p99).padStart(10)}${row.cpuUs.toFixed(0).padStart(12)}   ` +
        `${row.captureOff ? '(capture off)' : row.name === row.reference ? '(same protocol)' : `${fmt.ratio(row.ratio)} ${row.reference}`}`,
    );
  }
}

/**
 * The SUMMARY3 line from each scenario's rows (`{stream, rows}`): every translated pair and the capture pair
 * as `field=ratio(ok|MISS)[cpu=<its µs>/<reference's µs>us]`; same-protocol and capture-off rows are the
 * references, not fields.
 */
export function translationSummary(scenarios, memory = null) {
  const fields = [];
  for (const { stream, rows } of scenarios) {
    const mode = stream ? 'stream' : 'nonstream';
    for (const row of rows) {
      if (row.name === row.reference) continue;
      const floor = row.capture
        ? TRANSLATION_TARGETS.capture
        : stream
          ? TRANSLATION_TARGETS.stream
          : TRANSLATION_TARGETS.nonstream;
      const ok = row.ratio >= floor;
      const name = row.capture
        ? `xlate_capture_on/off_${pairName(row.client, row.backend)}_${mode}`
        : `xlate_${row.name}_${mode}`;
      const cpu = `[cpu=${row.cpuUs.toFixed(0)}/${row.refCpuUs.toFixed(0)}us]`;
      fields.push({ field: `${name}=${fmt.ratio(row.ratio)}(${verdict(ok)})${cpu}`, ok });
    }
  }
  if (memory) {
    // After the sustained load, the target is RSS ≤ 120 MB; the peak and the idle reading are reported.
    const ok = memory.endMb <= RSS_TARGET_MB;
    fields.push({
      field:
        `xlate_rss=${memory.endMb.toFixed(0)}MB(${verdict(ok)})[start=${memory.startMb.toFixed(0)},` +
        `peak=${memory.peakMb.toFixed(0)},idle_${memory.idleS}s=${memory.idleMb.toFixed(0)}MB]`,
      ok,
    });
  }
  const t = TRANSLATION_TARGETS;
  const line =
    `SUMMARY3 ${fields.map((f) => f.field).join(' ')} (targets vs the same-protocol path of the client: ` +
    `stream >=${t.stream}x, non-stream >=${t.nonstream}x; capture on/off >=${t.capture}x)`;
  return { line, allOk: fields.every((f) => f.ok) };
}

/** The part's settings, from the environment (bench/README.md, "Translation"). */
export function translationConfig(env) {
  return {
    capturePair: env.BENCH_XLATE_CAPTURE_PAIR || 'anthropic>openai',
    idleS: Number(env.BENCH_IDLE_S ?? 60),
  };
}

/**
 * Runs the part on its own processes (a mock, the project, the project with capture and without), stops them, and
 * returns the SUMMARY3 line and whether every target was met. `settings`: rounds, durationS, warmupS, preRunS,
 * streamChunks, highConnections, streamConnections, capturePair.
 */
export async function runTranslation({ workDir, settings }) {
  const mock = await startMock({ streamChunks: settings.streamChunks });
  const backendEnv = {
    ANTHROPIC_API_KEY: UPSTREAM_KEY,
    ANTHROPIC_API_BASE_URL: `${mock.origin}/v1`,
    GEMINI_API_KEY: UPSTREAM_KEY,
    GEMINI_API_BASE_URL: mock.origin,
  };
  const processes = [mock];
  try {
    const project = await startProject({
      upstreamOrigin: mock.origin,
      logFile: path.join(workDir, 'project-translation.log'),
      extraEnv: backendEnv,
    });
    processes.push(project);
    // The project's RSS through the part (sampled every 100 ms), at its end, and after the idle time.
    const memory = {
      startMb: rssMb(project.pid),
      peakMb: 0,
      endMb: 0,
      idleMb: 0,
      idleS: settings.idleS ?? 60,
    };
    const sampler = setInterval(() => {
      try {
        memory.peakMb = Math.max(memory.peakMb, rssMb(project.pid));
      } catch {
        // Gone: the last peak stands.
      }
    }, 100);
    sampler.unref();
    const captured = await startProject({
      upstreamOrigin: mock.origin,
      logFile: path.join(workDir, 'project-translation-capture.log'),
      extraEnv: backendEnv,
      extraArgs: [
        '--capture-file',
        path.join(workDir, 'capture-translation.jsonl'),
        '--capture-max-bytes',
        String(50 * 1024 * 1024),
        '--capture-max-files',
        '2',
      ],
    });
    processes.push(captured);
    const uncaptured = await startProject({
      upstreamOrigin: mock.origin,
      logFile: path.join(workDir, 'project-translation-capture-off.log'),
      extraEnv: backendEnv,
    });
    processes.push(uncaptured);
    const targets = translationTargets({
      project,
      captured,
      uncaptured,
      capturePair: settings.capturePair,
    });
    for (const target of targets) await verifyTarget(target, settings.streamChunks);
    console.log(
      'translation: verified: every client>backend pair answers 200 with the mock content, whole and streamed',
    );
    const scenarios = [
      {
        id: `xlate_nonstream_c${settings.highConnections}`,
        label: `non-streaming, ${settings.highConnections} connections`,
        stream: false,
        connections: settings.highConnections,
      },
      {
        id: `xlate_stream_c${settings.streamConnections}`,
        label: `streaming ${settings.streamChunks}-chunk SSE, ${settings.streamConnections} connections`,
        stream: true,
        connections: settings.streamConnections,
      },
    ];
    const taking = (scenario) => targets.filter((t) => scenario.stream || !t.streamOnly);
    console.log('translation: warming up…');
    for (const scenario of scenarios) {
      for (const target of taking(scenario)) {
        const stats = await measureTarget(target, scenario.stream, scenario.connections, settings.warmupS);
        const problems = failuresOf(stats);
        if (problems.length > 0) throw new Error(`${target.name} warm-up: ${problems.join('; ')}`);
      }
    }
    console.log('translation: measuring:');
    const results = [];
    for (const scenario of scenarios) {
      const runs = await measureRounds(taking(scenario), scenario, settings);
      results.push({ scenario, stream: scenario.stream, rows: scenarioRows(taking(scenario), runs) });
    }
    clearInterval(sampler);
    memory.endMb = rssMb(project.pid);
    if (memory.idleS > 0) {
      console.log(`translation: the project left idle for ${memory.idleS} s…`);
      await sleep(memory.idleS * 1000);
    }
    memory.idleMb = rssMb(project.pid);
    for (const { scenario, rows } of results) printScenario(scenario, rows, settings.rounds);
    console.log(
      `\ntranslation: project RSS ${memory.startMb.toFixed(0)} MB at start, peak ${memory.peakMb.toFixed(0)} MB, ` +
        `${memory.endMb.toFixed(0)} MB after the load, ${memory.idleMb.toFixed(0)} MB after ${memory.idleS} s idle`,
    );
    return translationSummary(results, memory);
  } finally {
    await Promise.all(processes.map((p) => stopChild(p.child)));
  }
}
