import type { Protocol } from './types.js';

/** What an error answer says, independent of protocol. */
export interface ErrorInfo {
  status: number;
  message: string;
  /** Machine code (OpenAI `code`), e.g. `invalid_api_key`, `rate_limit_exceeded`. */
  code: string;
  param?: string | null;
  /** Seconds, mirrored into the body as `retry_after` (README, Authentication: Responses). */
  retryAfter?: number | undefined;
}

const OPENAI_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'invalid_request_error',
  403: 'permission_error',
  404: 'invalid_request_error',
  413: 'invalid_request_error',
  429: 'rate_limit_exceeded',
};

const ANTHROPIC_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

const GEMINI_STATUS: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'UNIMPLEMENTED',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
  // Anthropic's "overloaded": a Gemini client retries UNAVAILABLE, as it would Google's own 503.
  529: 'UNAVAILABLE',
};

export function openaiErrorType(status: number): string {
  return OPENAI_TYPES[status] ?? (status >= 500 ? 'server_error' : 'invalid_request_error');
}

export function anthropicErrorType(status: number): string {
  return ANTHROPIC_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
}

export function geminiErrorStatus(status: number): string {
  return GEMINI_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'FAILED_PRECONDITION');
}

/** The error body each SDK recognises (README, Endpoints), so it raises its own typed error. */
export function errorEnvelope(protocol: Protocol, info: ErrorInfo): Record<string, unknown> {
  const retry = info.retryAfter !== undefined ? { retry_after: info.retryAfter } : {};
  switch (protocol) {
    case 'anthropic':
      return {
        type: 'error',
        error: { type: anthropicErrorType(info.status), message: info.message, ...retry },
      };
    case 'gemini':
      return {
        error: { code: info.status, message: info.message, status: geminiErrorStatus(info.status), ...retry },
      };
    default:
      return {
        error: {
          message: info.message,
          // A spent quota has a type of its own, as OpenAI sends it.
          type: info.code === 'insufficient_quota' ? 'insufficient_quota' : openaiErrorType(info.status),
          code: info.code,
          param: info.param ?? null,
          ...retry,
        },
      };
  }
}
