// Values the benchmark's processes agree on. Fixed, fake keys: the benchmark talks to 127.0.0.1 only.
export const MOCK_ANSWER_MARKER = 'bench-mock-answer';
export const PROXY_KEY = 'bench-proxy-key-0123456789abcdef';
export const UPSTREAM_KEY = 'sk-bench-upstream-key-0123456789abcdef';
export const DEFAULT_STREAM_CHUNKS = 20;
/** The admin key (LLM_INTERACTIVE_PROXY_ADMIN_KEY): the operator endpoints (/metrics, /admin/*) need it. */
export const ADMIN_KEY = 'bench-admin-key-0123456789abcdef';
