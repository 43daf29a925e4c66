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

function defaultCode(status: number): string {
  switch (status) {
    case 400:
      return 'invalid_request';
    case 401:
      return 'invalid_api_key';
    case 403:
      return 'permission_denied';
    case 404:
      return 'not_found';
    case 413:
      return 'request_too_large';
    case 429:
      return 'rate_limit_exceeded';
    case 502:
      return 'upstream_unreachable';
    case 504:
      return 'upstream_timeout';
    default:
      return status >= 500 ? 'internal_error' : 'error';
  }
}
