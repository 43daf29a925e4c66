// The many-streams row's quick request, sent from a process of its own: another client of the proxy (an
// agent's short call) rather than the process that holds the row's thousands of streams, whose event loop is
// itself saturated while it opens them (docs/performance.md, "Accepting connections while streams open").
// Forked with an IPC channel: it sends {ready} once loaded; on {origin, key, body} it sends one request on a
// new connection and answers {ms, status, text}.
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { CHAT_PATH } from './load.mjs';

process.on('message', async ({ origin, key, body }) => {
  const dispatcher = new Agent({ connections: 1 });
  const sentAt = performance.now();
  try {
    const res = await request(`${origin}${CHAT_PATH}`, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body,
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    const text = await res.body.text();
    process.send({ ms: performance.now() - sentAt, status: res.statusCode, text });
  } catch (err) {
    process.send({ ms: performance.now() - sentAt, status: 0, text: String(err) });
  } finally {
    await dispatcher.close().catch(() => undefined);
  }
});
process.on('disconnect', () => process.exit(0));
process.send({ ready: true });
