// The floor: the least a Node.js proxy can do and still be a proxy. node:http in front, an undici Pool
// behind, one bearer-key check (the auth a gateway cannot skip), bodies piped through untouched in both
// directions. No logging, no parsing, no routing. The project proxy is measured against this.
//
// Env: PASSTHROUGH_UPSTREAM (origin, e.g. http://127.0.0.1:9000), PASSTHROUGH_KEY (the key clients send),
// PASSTHROUGH_UPSTREAM_KEY (sent upstream instead), PASSTHROUGH_PORT (default 0).
// Run as a child with an IPC channel: it sends {port} once listening.
import http from 'node:http';
import { Pool } from 'undici';

const upstream = process.env.PASSTHROUGH_UPSTREAM;
if (!upstream) throw new Error('PASSTHROUGH_UPSTREAM is required');
const expectedAuth = `Bearer ${process.env.PASSTHROUGH_KEY ?? ''}`;
const upstreamAuth = `Bearer ${process.env.PASSTHROUGH_UPSTREAM_KEY ?? ''}`;

const pool = new Pool(upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 60_000 });

// Hop-by-hop headers belong to one connection and must not be forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'te',
]);

function forwardableHeaders(headers) {
  const out = {};
  for (const name in headers) if (!HOP_BY_HOP.has(name)) out[name] = headers[name];
  return out;
}

const UNAUTHORIZED =
  '{"error":{"message":"invalid key","type":"invalid_request_error","code":"invalid_api_key"}}';

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.headers.authorization !== expectedAuth) {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(UNAUTHORIZED);
    return;
  }
  const headers = {
    'content-type': req.headers['content-type'] ?? 'application/json',
    authorization: upstreamAuth,
  };
  const length = req.headers['content-length'];
  if (length !== undefined) headers['content-length'] = length;
  const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
  pool.request({ path: req.url, method: req.method, headers, body: hasBody ? req : undefined }, (err, up) => {
    if (err) {
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"upstream unreachable"}}');
      return;
    }
    res.writeHead(up.statusCode, forwardableHeaders(up.headers));
    // .pipe rather than stream.pipeline: on Node 20 pipeline's abort-signal bookkeeping costs ~40% here.
    up.body.on('error', () => res.destroy());
    up.body.pipe(res);
  });
});

server.listen(Number(process.env.PASSTHROUGH_PORT ?? 0), '127.0.0.1', () => {
  process.send?.({ port: server.address().port });
});
// Exit through process.exit so that `node --cpu-prof` writes its profile; and never outlive the runner.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(0));
process.on('disconnect', () => process.exit(0));
