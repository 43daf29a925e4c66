// The attacker of the attack scenario (the attack row of docs/performance.md, see attack.mjs): wrong keys at
// full speed, each request from the next of N client addresses, named in X-Forwarded-For (the project trusts
// the benchmark's 127.0.0.1 as a reverse proxy). It runs as its own child process so that its event loop and
// CPU time are apart from the benchmark process, which measures the valid client's latency.
//
// IPC protocol (forked by processes.mjs startAttacker):
//   -> {type: 'ready'}                                              once loaded
//   <- {type: 'start', origin, connections, addresses}             start the load
//   -> {type: 'running'}                                            once the first answer came back
//   <- {type: 'stop'}                                               stop the load
//   -> {type: 'stopped', requests, durationS, statuses, errors, timeouts}
import autocannon from 'autocannon';
import { chatLoad } from './load.mjs';

const WRONG_KEY = 'bench-attacker-wrong-key-0000000000000000';
// Longer than any measurement: the benchmark stops the load itself.
const MAX_DURATION_S = 3_600;

/** The attack's client addresses, 10.0.0.0 … (10.0.3.231 for 1,000): one address each, not a range. */
function attackAddresses(count) {
  if (count > 1 << 24) throw new Error(`at most ${1 << 24} attack addresses`);
  return Array.from({ length: Math.floor(count) }, (_, i) => `10.${i >> 16}.${(i >> 8) & 255}.${i & 255}`);
}

let current = null;

/**
 * Starts the load. Each connection cycles through all the addresses, one a request, from its own starting
 * point: the load spreads over every address at once instead of all connections walking the list in step.
 * autocannon builds each request once, so naming the next address costs this process nothing per request.
 */
function start({ origin, connections, addresses }) {
  const requests = attackAddresses(addresses).map((address) => ({ headers: { 'x-forwarded-for': address } }));
  const statuses = {};
  let running = false;
  let clientIndex = 0;
  const instance = autocannon({
    ...chatLoad({ origin, key: WRONG_KEY, stream: false, connections }),
    setupClient: (client) => {
      const offset = Math.floor((clientIndex++ * requests.length) / connections) % requests.length;
      client.setRequests([...requests.slice(offset), ...requests.slice(0, offset)]);
    },
    duration: MAX_DURATION_S,
  });
  instance.on('response', (_client, statusCode) => {
    statuses[statusCode] = (statuses[statusCode] ?? 0) + 1;
    if (!running) {
      running = true;
      process.send({ type: 'running' });
    }
  });
  current = { instance, statuses };
}

async function stop() {
  const { instance, statuses } = current;
  current = null;
  instance.stop();
  const result = await instance;
  process.send({
    type: 'stopped',
    requests: Object.values(statuses).reduce((sum, n) => sum + n, 0),
    durationS: result.duration,
    statuses,
    errors: result.errors,
    timeouts: result.timeouts,
  });
}

process.on('message', (msg) => {
  if (msg.type === 'start') start(msg);
  else if (msg.type === 'stop') stop();
});
// Never outlive the benchmark.
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready' });
