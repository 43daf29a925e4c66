/**
 * An error the proxy answers itself. It carries an HTTP status and a short machine code; the server turns
 * it into the envelope of the client's protocol (src/protocols/error-envelopes.ts). The message must never hold a
 * secret or echo a credential; what it quotes of the client's text is redacted where the answer is written
 * (proxyErrorAnswer, src/pipeline/respond.ts), and quoted cut short only after that (redactedExcerpt).
 */
export class ProxyError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryAfter: number | undefined;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options: {
      code?: string;
      retryAfter?: number;
      param?: string | null;
      headers?: Record<string, string>;
    } = {},
  ) {
    super(message);
    this.name = 'ProxyError';
    this.status = status;
    this.code = options.code ?? defaultCode(status);
    this.retryAfter = options.retryAfter;
    this.param = options.param ?? null;
    this.headers = options.headers ?? {};
  }
}

/**
 * The code of an error that names none, by status. A 5xx without a code of its own (a provider's 500 or
 * 503, decoded by src/protocols/shared.ts) is OpenAI's `server_error`, the code the Responses API puts in
 * `response.failed` and agents act on (README, Errors); the proxy's own crash says `internal_error`
 * explicitly (src/server/failures.ts).
 */
const DEFAULT_CODES: Readonly<Record<number, string>> = {
  400: 'invalid_request',
  401: 'invalid_api_key',
  403: 'permission_denied',
  404: 'not_found',
  413: 'request_too_large',
  429: 'rate_limit_exceeded',
  502: 'upstream_unreachable',
  504: 'upstream_timeout',
};

function defaultCode(status: number): string {
  return DEFAULT_CODES[status] ?? (status >= 500 ? 'server_error' : 'error');
}
