import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startProxyProcess, type ProxyProcess } from '../helpers/proxy-process.js';
import { rawExchange } from './support.js';

const KEY = 'tls-proxy-key-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'lip-tls-'));

/** A self-signed certificate for localhost/127.0.0.1, valid for a day. */
function selfSigned(name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=localhost',
      '-days',
      '1',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** A TLS handshake with the proxy: the suite and version agreed on, or the error's code. */
function handshake(
  url: string,
  options: ConnectionOptions,
): Promise<{ cipher: string; version: string } | { code: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connectTls({ host: hostname, port: Number(port), rejectUnauthorized: false, ...options });
    socket.once('secureConnect', () => {
      const result = { cipher: socket.getCipher().standardName, version: String(socket.getProtocol()) };
      socket.destroy();
      resolve(result);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.destroy();
      resolve({ code: err.code ?? err.message });
    });
  });
}

describe('HTTPS without a fronting proxy (--tls-cert / --tls-key)', () => {
  let files: { cert: string; key: string };
  let trusting: Agent;
  let proxy: ProxyProcess;

  beforeAll(async () => {
    files = selfSigned('server');
    trusting = new Agent({ connect: { ca: readFileSync(files.cert) } });
    proxy = await startProxyProcess(['--tls-cert', files.cert, '--tls-key', files.key], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
  });
  afterAll(async () => {
    await trusting?.close();
    await proxy?.stop();
  });

  it('serves the OpenAI SDK over HTTPS, whole and streamed', async () => {
    expect(proxy.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const client = new OpenAI({
      baseURL: `${proxy.url}/v1`,
      apiKey: KEY,
      maxRetries: 0,
      fetch: ((url: string, init: object) => undiciFetch(url, { ...init, dispatcher: trusting })) as never,
    });
    const whole = await client.chat.completions.create({
      model: 'gpt-4',
      messages: [{ role: 'user', content: 'over TLS' }],
    });
    expect(whole.choices[0]?.message.content).toBe('over TLS');
    const stream = await client.chat.completions.create({
      model: 'gpt-4',
      stream: true,
      messages: [{ role: 'user', content: 'streamed over TLS' }],
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('streamed over TLS');
  });

  it('is real TLS: a client that does not trust the certificate refuses it, and plain HTTP gets no answer', async () => {
    await expect(fetch(`${proxy.url}/health`)).rejects.toThrow();
    const plain = await rawExchange(proxy.url, 'GET /health HTTP/1.1\r\nhost: x\r\n\r\n');
    expect(plain.raw).not.toContain('"status":"ok"');
  });

  it('keeps authentication and the security headers over HTTPS', async () => {
    const denied = await undiciFetch(`${proxy.url}/v1/models`, { dispatcher: trusting });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('x-content-type-options')).toBe('nosniff');
    expect(denied.headers.get('cache-control')).toBe('no-store');
  });

  it('offers only forward-secret AEAD suites on TLS 1.2, TLS 1.3 as Node has it, and nothing older', async () => {
    const tls12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' } as const;
    expect(await handshake(proxy.url, { ...tls12, ciphers: 'ECDHE-RSA-AES128-GCM-SHA256' })).toEqual({
      cipher: 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
      version: 'TLSv1.2',
    });
    expect(await handshake(proxy.url, { ...tls12, ciphers: 'ECDHE-RSA-CHACHA20-POLY1305' })).toEqual({
      cipher: 'TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256',
      version: 'TLSv1.2',
    });
    // The server's order wins over a client that prefers a suite the policy does not have.
    expect(
      await handshake(proxy.url, {
        ...tls12,
        ciphers: 'ECDHE-RSA-AES128-SHA256:ECDHE-RSA-AES256-GCM-SHA384',
      }),
    ).toEqual({ cipher: 'TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384', version: 'TLSv1.2' });
    // CBC (with and without ECDHE) and RSA key exchange (no forward secrecy, even with GCM): no common suite.
    for (const ciphers of [
      'AES128-SHA256',
      'ECDHE-RSA-AES128-SHA256',
      'ECDHE-RSA-AES256-SHA',
      'AES128-GCM-SHA256',
    ]) {
      expect(await handshake(proxy.url, { ...tls12, ciphers }), ciphers).toEqual({
        code: 'ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE',
      });
    }
    expect(await handshake(proxy.url, { minVersion: 'TLSv1.3' })).toMatchObject({ version: 'TLSv1.3' });
    // SECLEVEL=0 lets this client offer TLS 1.1 at all: the refusal is the server's.
    expect(
      await handshake(proxy.url, {
        minVersion: 'TLSv1.1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      }),
    ).toEqual({ code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
  });

  it('takes the same files from the environment and from YAML', async () => {
    const yaml = join(dir, 'tls.yaml');
    writeFileSync(
      yaml,
      `server:\n  tls_cert: ${JSON.stringify(files.cert)}\n  tls_key: ${JSON.stringify(files.key)}\n`,
    );
    for (const [args, env] of [
      [[], { TLS_CERT_FILE: files.cert, TLS_KEY_FILE: files.key }],
      [['--config', yaml], {}],
    ] as const) {
      const other = await startProxyProcess([...args], { LLM_INTERACTIVE_PROXY_API_KEY: KEY, ...env });
      try {
        expect(other.url).toMatch(/^https:/);
        const res = await undiciFetch(`${other.url}/health`, { dispatcher: trusting });
        expect(await res.json()).toEqual({ status: 'ok' });
      } finally {
        await other.stop();
      }
    }
  });

  it('refuses to start with a certificate and a key that do not belong together', async () => {
    const other = selfSigned('other');
    const result = await runCli(['--port', '0', '--tls-cert', files.cert, '--tls-key', other.key], {
      LLM_INTERACTIVE_PROXY_API_KEY: KEY,
    });
    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/TLS certificate .*server\.crt and key .*other\.key are not a usable pair/);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr).not.toContain('PRIVATE KEY');
  });
});
