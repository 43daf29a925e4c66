import { z } from 'zod';
import { isAddressRange, isTrustedProxyEntry } from '../auth/client-address.js';
import { EXPIRES_AT_FORMAT, LABEL_PATTERN, parseExpiresAt, reservedKeyName } from './key-attributes.js';

/**
 * The one source of truth for every setting: its YAML path (the object nesting below), its type and range,
 * its default, and — through `.meta()` — its CLI flag, env var, help group and help text. `--help`, env
 * parsing and YAML validation are all generated from this file.
 */
export type SettingKind = 'string' | 'int' | 'number' | 'bool' | 'list';

export interface SettingMeta {
  kind: SettingKind;
  group: HelpGroup;
  help: string;
  /** Flag that takes a value (`--port <n>`), or for booleans the flag that sets `true`. */
  flag?: string;
  /** For booleans: the flag that sets `false`. */
  offFlag?: string;
  /**
   * For booleans with only an `offFlag`: what that flag does, for `--help` (`help` describes the setting,
   * i.e. what `true` does). With an on flag too, the off flag is described as its opposite.
   */
  offHelp?: string;
  /** Value placeholder shown in help. */
  arg?: string;
  env?: string;
  /** Not settable from YAML (e.g. the path of the YAML file itself). */
  cliOnly?: boolean;
}

export const HELP_GROUPS = [
  'Server',
  'Backends',
  'Authentication',
  'Brute-force protection',
  'Shared state',
  'Logging and capture',
  'Sessions, commands and guards',
] as const;
export type HelpGroup = (typeof HELP_GROUPS)[number];

// A string key: zod ignores metadata objects that have only symbol keys.
const SETTING = 'llmProxySetting';

function setting<T extends z.ZodType>(schema: T, meta: SettingMeta): T {
  return schema.meta({ [SETTING]: meta } as Record<string, unknown>) as T;
}

export function settingMeta(schema: z.ZodType): SettingMeta | undefined {
  const meta = schema.meta() as Record<string, unknown> | undefined;
  return meta?.[SETTING] as SettingMeta | undefined;
}

/**
 * The longest time a timer can wait, in seconds: Node's timers hold at most 2^31 − 1 ms (~24.8 days); a
 * longer one fires at once. Durations that become timers stop there.
 */
export const MAX_TIMER_SECONDS = 2_147_483;
/** A duration that becomes a timer: at least `min`, at most MAX_TIMER_SECONDS. */
const seconds = (min: number) =>
  z
    .number()
    .min(min)
    .max(MAX_TIMER_SECONDS, {
      message: `expected number <= ${MAX_TIMER_SECONDS} (about 24.8 days, the longest a timer can wait)`,
    });
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.number().int().min(min).max(max);

/**
 * A browser origin as it sends it in `Origin`: scheme, host and port, nothing after (a trailing slash or a
 * path would never match, and the preflight would get no CORS answer).
 */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return url.origin === value;
  } catch {
    return false;
  }
}
const corsOrigin = z.string().min(1).refine(isOrigin, {
  message: 'expected an origin: scheme://host[:port] and nothing after (https://app.example.com)',
});

const RANGE_EXAMPLES = 'e.g. 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32';
const addressRange = z
  .string()
  .min(1)
  .refine(isAddressRange, {
    error: (issue) => `${JSON.stringify(issue.input)} is not an IP address or CIDR (${RANGE_EXAMPLES})`,
  });
const trustedProxy = z
  .string()
  .min(1)
  .refine(isTrustedProxyEntry, {
    error: (issue) =>
      `${JSON.stringify(issue.input)} is not an IP address, a CIDR or loopback|linklocal|uniquelocal ` +
      `(${RANGE_EXAMPLES})`,
  });

const ServerSchema = z
  .object({
    host: setting(z.string().min(1).default('127.0.0.1'), {
      kind: 'string',
      group: 'Server',
      flag: '--host',
      arg: 'HOST',
      env: 'APP_HOST',
      help: 'Address to listen on',
    }),
    port: setting(int(0, 65535).default(8000), {
      kind: 'int',
      group: 'Server',
      flag: '--port',
      arg: 'PORT',
      env: 'APP_PORT',
      help: 'Port to listen on (0 picks a free port)',
    }),
    timeout_seconds: setting(seconds(0.001).default(120), {
      kind: 'number',
      group: 'Server',
      flag: '--timeout',
      arg: 'S',
      env: 'PROXY_TIMEOUT',
      help: 'Longest wait for a backend’s first byte (and between stream bytes)',
    }),
    max_body_bytes: setting(int(1).default(10 * 1024 * 1024), {
      kind: 'int',
      group: 'Server',
      flag: '--max-body-bytes',
      arg: 'N',
      env: 'MAX_BODY_BYTES',
      help: 'Largest request body accepted; larger bodies get 413',
    }),
    shutdown_timeout_seconds: setting(seconds(0).default(10), {
      kind: 'number',
      group: 'Server',
      flag: '--shutdown-timeout',
      arg: 'S',
      env: 'SHUTDOWN_TIMEOUT',
      help: 'On SIGINT/SIGTERM, how long in-flight requests and streams may take to finish',
    }),
    cors_origins: setting(z.array(corsOrigin).default([]), {
      kind: 'list',
      group: 'Server',
      flag: '--cors-origin',
      arg: 'ORIGIN',
      env: 'CORS_ORIGINS',
      help: 'Allowed CORS origin (repeatable; env comma-separated); empty allows any origin, none with auth off',
    }),
    allowed_hosts: setting(z.array(z.string().min(1)).default([]), {
      kind: 'list',
      group: 'Server',
      flag: '--allowed-host',
      arg: 'HOST',
      env: 'ALLOWED_HOSTS',
      help: 'With auth off, another Host name to answer besides localhost and loopback (repeatable)',
    }),
    client_headers_timeout_seconds: setting(seconds(0.1).default(30), {
      kind: 'number',
      group: 'Server',
      flag: '--client-headers-timeout',
      arg: 'S',
      env: 'CLIENT_HEADERS_TIMEOUT',
      help: 'Longest time a client may take to send its request headers (slow-loris guard)',
    }),
    client_request_timeout_seconds: setting(seconds(0.1).default(60), {
      kind: 'number',
      group: 'Server',
      flag: '--client-request-timeout',
      arg: 'S',
      env: 'CLIENT_REQUEST_TIMEOUT',
      help: 'Longest time a client may take to send a whole request, body included (not the answer)',
    }),
    tls_cert: setting(z.string().min(1).optional(), {
      kind: 'string',
      group: 'Server',
      flag: '--tls-cert',
      arg: 'PATH',
      env: 'TLS_CERT_FILE',
      help: 'Serve HTTPS with this PEM certificate (chain); needs --tls-key',
    }),
    tls_key: setting(z.string().min(1).optional(), {
      kind: 'string',
      group: 'Server',
      flag: '--tls-key',
      arg: 'PATH',
      env: 'TLS_KEY_FILE',
      help: 'PEM private key for --tls-cert',
    }),
  })
  .strict()
  .superRefine((server, ctx) => {
    if (server.client_headers_timeout_seconds > server.client_request_timeout_seconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['client_headers_timeout_seconds'],
        // `{…}` names the other setting as the user set it (config/load.ts).
        message: `expected at most {server.client_request_timeout_seconds} (${server.client_request_timeout_seconds}): headers are part of the request`,
      });
    }
  });

/** A store location: `memory`, or a Redis URL (`rediss://` for TLS). */
const STORE_URL = z.string().regex(/^(memory|rediss?:\/\/.+)$/, 'expected "memory" or a redis:// URL');

/** `auth.brute_force_protection`; the runtime policy is derived from it by `bruteForcePolicyOf` (src/auth). */
export const BruteForceSchema = z
  .object({
    enabled: setting(z.boolean().default(true), {
      kind: 'bool',
      group: 'Brute-force protection',
      flag: '--enable-brute-force-protection',
      offFlag: '--disable-brute-force-protection',
      env: 'BRUTE_FORCE_PROTECTION_ENABLED',
      help: 'Block client addresses that send too many bad keys',
    }),
    max_failed_attempts: setting(int(1).default(5), {
      kind: 'int',
      group: 'Brute-force protection',
      flag: '--auth-max-failed-attempts',
      arg: 'N',
      env: 'BRUTE_FORCE_MAX_FAILED_ATTEMPTS',
      help: 'Failed attempts allowed before an address is blocked',
    }),
    ttl_seconds: setting(int(1).default(900), {
      kind: 'int',
      group: 'Brute-force protection',
      flag: '--auth-brute-force-ttl',
      arg: 'S',
      env: 'BRUTE_FORCE_TTL_SECONDS',
      help: 'Counting window; it slides from the last failure',
    }),
    initial_block_seconds: setting(int(1).default(30), {
      kind: 'int',
      group: 'Brute-force protection',
      flag: '--auth-brute-force-initial-block',
      arg: 'S',
      env: 'BRUTE_FORCE_INITIAL_BLOCK_SECONDS',
      help: 'Length of the first block',
    }),
    block_multiplier: setting(z.number().min(1).default(2), {
      kind: 'number',
      group: 'Brute-force protection',
      flag: '--auth-brute-force-multiplier',
      arg: 'F',
      env: 'BRUTE_FORCE_BLOCK_MULTIPLIER',
      help: 'Each repeated block lasts this many times longer',
    }),
    max_block_seconds: setting(int(1).default(3600), {
      kind: 'int',
      group: 'Brute-force protection',
      flag: '--auth-brute-force-max-block',
      arg: 'S',
      env: 'BRUTE_FORCE_MAX_BLOCK_SECONDS',
      help: 'Longest block',
    }),
    blocked_delay_ms: setting(int(0, 60_000).default(1000), {
      kind: 'int',
      group: 'Brute-force protection',
      flag: '--auth-blocked-delay',
      arg: 'MS',
      env: 'BRUTE_FORCE_BLOCKED_DELAY_MS',
      help:
        "Hold a blocked client's 429 this long before sending it (a tarpit: an attacker's connections wait " +
        'on a timer instead of taking the CPU that valid clients need); 0 answers at once',
    }),
    max_tracked_clients: setting(int(1).default(100_000), {
      kind: 'int',
      group: 'Brute-force protection',
      flag: '--auth-brute-force-max-tracked',
      arg: 'N',
      env: 'BRUTE_FORCE_MAX_TRACKED',
      help: 'Most client addresses remembered at once (memory bound)',
    }),
    store: setting(STORE_URL.default('memory'), {
      kind: 'string',
      group: 'Brute-force protection',
      flag: '--brute-force-store',
      arg: 'URL',
      env: 'BRUTE_FORCE_STORE',
      help:
        'Where counts and blocks live: memory, or redis://host:port/db to share them across replicas ' +
        '(brute-force records alone; --state-store, when given, wins)',
    }),
  })
  .strict();

export type BruteForceSettings = z.infer<typeof BruteForceSchema>;

/** A positive whole number, saying so when it is not (no setting's metadata names these as integers). */
const count = () =>
  z.number().int({ error: 'expected integer >= 1' }).min(1, { error: 'expected integer >= 1' });

/** A spending limit: US dollars per period (README, Teams: policies). */
const BudgetSchema = z
  .object({
    usd: z.number().positive(),
    per: z.enum(['day', 'week', 'month', 'total']),
  })
  .strict();

/**
 * Limits a key has of its own, or shares with the keys of a label (README, Teams: policies). `models` is an
 * allow-list of `backend:model` globs and bare model names (absent: every model); the counters (rpm, tpm,
 * max_concurrent, budget) are enforced through the shared state store.
 */
const LIMIT_FIELDS = {
  models: z
    .array(
      z.string().regex(/^\S+$/, 'expected a model pattern without spaces, e.g. "anthropic:*" or "gpt-4o"'),
    )
    .min(1, 'expected at least one model pattern (leave models out to allow every model)')
    .optional(),
  rpm: count().optional(),
  tpm: count().optional(),
  max_concurrent: count().optional(),
  budget: BudgetSchema.optional(),
  /** `false`: the key's in-chat commands go to the model as text (README, "In-chat commands and sessions"). */
  commands: z.boolean().optional(),
  /** `false`: the key's answers are not checked by the dangerous-command guard (README, "Agent guardrails"). */
  guardrails: z.boolean().optional(),
};

export const PolicySchema = z.object(LIMIT_FIELDS).strict();
export type PolicyLimits = z.infer<typeof PolicySchema>;

const LabelSchema = z
  .string()
  .regex(LABEL_PATTERN, 'expected a label: letters, digits, ".", "_" or "-", at most 64 characters');

const ApiKeyObjectSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .superRefine((name, ctx) => {
        const reserved = reservedKeyName(name);
        if (reserved !== null) ctx.addIssue({ code: 'custom', message: reserved });
      }),
    key: z.string().min(1).optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'expected 64 hex digits')
      .optional(),
    role: z.enum(['client', 'admin']).optional(),
    labels: z.array(LabelSchema).optional(),
    expires_at: z
      .string()
      .refine((text) => parseExpiresAt(text) !== null, EXPIRES_AT_FORMAT)
      .optional(),
    ...LIMIT_FIELDS,
  })
  .strict()
  .superRefine((entry, ctx) => {
    if ((entry.key === undefined) === (entry.sha256 === undefined)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'expected exactly one of key or sha256' });
    }
  });

const ApiKeyEntrySchema = z.union([z.string().min(1), ApiKeyObjectSchema]);
export type ApiKeyEntry = z.infer<typeof ApiKeyEntrySchema>;

const AuthSchema = z
  .object({
    disable_auth: setting(z.boolean().default(false), {
      kind: 'bool',
      group: 'Authentication',
      flag: '--disable-auth',
      env: 'DISABLE_AUTH',
      help: 'Turn authentication off (local development only)',
    }),
    allow_unauthenticated_remote: setting(z.boolean().default(false), {
      kind: 'bool',
      group: 'Authentication',
      flag: '--allow-unauthenticated-remote',
      env: 'ALLOW_UNAUTHENTICATED_REMOTE',
      help: 'Allow --disable-auth on a non-loopback --host',
    }),
    api_keys: z.array(ApiKeyEntrySchema).default([]),
    /** Limits shared by the keys of a label, by label (README, Teams: policies). Reloaded with the keys. */
    policies: z.record(LabelSchema, PolicySchema).default({}),
    api_keys_file: setting(z.string().min(1).optional(), {
      kind: 'string',
      group: 'Authentication',
      flag: '--api-keys-file',
      arg: 'PATH',
      env: 'API_KEYS_FILE',
      help: 'File of proxy keys, one "name:key" or "name:sha256:<hex>" a line',
    }),
    bypass_paths: z.array(z.string().regex(/^\//, 'expected a path starting with /')).optional(),
    trusted_proxies: setting(z.array(trustedProxy).default([]), {
      kind: 'list',
      group: 'Authentication',
      flag: '--trusted-proxy',
      arg: 'CIDR',
      env: 'TRUSTED_PROXIES',
      help: 'Reverse proxy whose X-Forwarded-For / Forwarded is believed (repeatable)',
    }),
    trusted_ips: setting(z.array(addressRange).default([]), {
      kind: 'list',
      group: 'Authentication',
      flag: '--trusted-ip',
      arg: 'IP|CIDR',
      env: 'TRUSTED_IPS',
      help: 'Client addresses that skip authentication (repeatable)',
    }),
    redact_api_keys_in_prompts: setting(z.boolean().default(true), {
      kind: 'bool',
      group: 'Authentication',
      offFlag: '--disable-redact-api-keys-in-prompts',
      env: 'REDACT_API_KEYS_IN_PROMPTS',
      help: 'Replace configured secrets found in prompts before they reach a backend',
      offHelp: 'Leave configured secrets found in prompts as they are (they reach the backend)',
    }),
    brute_force_protection: BruteForceSchema.prefault({}),
  })
  .strict();

/**
 * `state`: where what replicas must agree on lives (README, "Shared state"). `store` has no default so that
 * "not given" can be told apart from `memory`: `--brute-force-store` alone keeps its old meaning, and
 * `--state-store`, when given, wins for everything (`resolveStateSettings`, src/state/settings.ts).
 */
const StateSchema = z
  .object({
    store: setting(STORE_URL.optional(), {
      kind: 'string',
      group: 'Shared state',
      flag: '--state-store',
      arg: 'URL',
      env: 'STATE_STORE',
      help:
        'Where everything replicas share lives (brute-force records, stored responses, …): memory (the ' +
        'default), or redis://host:port/db / rediss://… (needs PROXY_STATE_SECRET); wins over --brute-force-store',
    }),
    usage_file: setting(z.string().min(1).optional(), {
      kind: 'string',
      group: 'Shared state',
      flag: '--usage-file',
      arg: 'PATH',
      env: 'USAGE_FILE',
      help:
        'Usage ledger of one instance without Redis: append-only JSON lines, replayed at start, so budgets ' +
        'survive a restart (with a Redis state store, usage lives there)',
    }),
  })
  .strict();

/** `responses`: a server that speaks only OpenAI's Responses API (chat clients reach it by translation). */
export const BACKEND_TYPES = ['openai', 'anthropic', 'gemini', 'responses'] as const;

/**
 * A custom backend (`type`, `base_url`, `api_key_env`), or a built-in one's connection limit, prefill models
 * and key pool alone (`backends.openai: {max_connections: 100, api_key_envs: [KEY_A, KEY_B]}`). Which names
 * are built in is the backends' to know: the registry (src/backends/registry.ts) requires `base_url` of a
 * custom backend and refuses the other fields for a built-in one.
 */
const CustomBackendSchema = z
  .object({
    type: z.enum(BACKEND_TYPES).optional(),
    base_url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
    api_key_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name')
      .optional(),
    /** `type: openai` only: the server also serves the Responses API (`{base_url}/responses`). */
    responses: z.boolean().optional(),
    // Calls in flight to the backend, one connection each; a call that finds none free waits, within
    // --timeout (README, "Connections to backends").
    max_connections: int(1, 65_536).optional(),
    /** A key pool: the env vars of its keys, rotated over (README, Routes and failover). */
    api_key_envs: z
      .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name'))
      .min(1)
      .optional(),
    /**
     * Which of its models take an assistant prefill (a cut stream continued, `continue_streams`): all
     * (true), none (false, the default), or those matching a glob (README, Routes and failover).
     */
    prefill: z.union([z.boolean(), z.array(z.string().min(1)).min(1)]).optional(),
  })
  .strict();
export type CustomBackendConfig = z.infer<typeof CustomBackendSchema>;

const BackendsSchema = z
  .object({
    default_backend: setting(z.string().min(1).optional(), {
      kind: 'string',
      group: 'Backends',
      flag: '--default-backend',
      arg: 'NAME[:MODEL]',
      env: 'LLM_BACKEND',
      help: 'Backend for requests whose model names none (openai, openrouter, anthropic, gemini, mock, or custom)',
    }),
  })
  .catchall(CustomBackendSchema);

/** `sessions`: in-chat commands and the sessions they apply to (README, "In-chat commands"). */
const SessionsSchema = z
  .object({
    commands: setting(z.boolean().default(true), {
      kind: 'bool',
      group: 'Sessions, commands and guards',
      offFlag: '--disable-commands',
      env: 'COMMANDS_ENABLED',
      help: 'Read in-chat commands (!/help, !/set(...), …) in user messages',
      offHelp: 'Pass messages that start with the command prefix to the model as they are',
    }),
    command_prefix: setting(
      z
        .string()
        .regex(/^[\x21-\x7e]{1,8}$/, 'expected 1 to 8 printable characters without spaces')
        .default('!/'),
      {
        kind: 'string',
        group: 'Sessions, commands and guards',
        flag: '--command-prefix',
        arg: 'TEXT',
        env: 'COMMAND_PREFIX',
        help: 'What starts an in-chat command',
      },
    ),
    ttl_seconds: setting(int(1).default(3600), {
      kind: 'int',
      group: 'Sessions, commands and guards',
      flag: '--session-ttl',
      arg: 'S',
      env: 'SESSION_TTL',
      help: 'Seconds an idle session keeps its settings',
    }),
    max_sessions: setting(int(1).default(10_000), {
      kind: 'int',
      group: 'Sessions, commands and guards',
      flag: '--max-sessions',
      arg: 'N',
      env: 'MAX_SESSIONS',
      help: 'Sessions kept at once (the least recently used is forgotten first)',
    }),
  })
  .strict();

/** `loop_guard`: the tool-call loop guard (README, "Agent guardrails"). */
const LoopGuardSchema = z
  .object({
    enabled: setting(z.boolean().default(true), {
      kind: 'bool',
      group: 'Sessions, commands and guards',
      offFlag: '--disable-loop-guard',
      env: 'LOOP_GUARD_ENABLED',
      help: 'Steer an agent that repeats the same tool call (or gets the same output) over and over',
      offHelp: 'Forward repeated tool calls without a look',
    }),
    repeats: setting(int(2, 1000).default(7), {
      kind: 'int',
      group: 'Sessions, commands and guards',
      flag: '--loop-guard-repeats',
      arg: 'N',
      env: 'LOOP_GUARD_REPEATS',
      help: 'Repeats in a row that count as a loop',
    }),
  })
  .strict();

/** One shell rule of the dangerous-command guard, from YAML `guardrails.shell.rules`. */
const ShellRuleSchema = z
  .object({
    name: z.string().min(1).max(64),
    /** A regular expression over each normalised simple command, `program arg arg…`. */
    pattern: z
      .string()
      .min(1)
      .max(1000)
      .refine((text) => {
        try {
          new RegExp(text);
          return true;
        } catch {
          return false;
        }
      }, 'expected a regular expression'),
    reason: z.string().min(1).max(300),
  })
  .strict();

/** `guardrails.shell`: the dangerous-command guard's tools and rules (README, "Agent guardrails"). */
const ShellGuardSchema = z
  .object({
    tools: setting(z.array(z.string().min(1).max(128)).default([]), {
      kind: 'list',
      group: 'Sessions, commands and guards',
      flag: '--guardrails-shell-tool',
      arg: 'NAME',
      env: 'GUARDRAILS_SHELL_TOOLS',
      help: 'Another tool whose calls run shell commands (repeatable; its command, cmd or script argument)',
    }),
    /** `false` keeps only the YAML's own rules. */
    default_rules: z.boolean().default(true),
    rules: z.array(ShellRuleSchema).default([]),
  })
  .strict();

/** `guardrails`: the dangerous-command guard (README, "Agent guardrails"). */
const GuardrailsSchema = z
  .object({
    enabled: setting(z.boolean().default(true), {
      kind: 'bool',
      group: 'Sessions, commands and guards',
      offFlag: '--disable-guardrails',
      env: 'GUARDRAILS_ENABLED',
      help: 'Check shell commands in agents’ tool calls against the dangerous-command rules',
      offHelp: 'Pass every tool call on unchecked',
    }),
    action: setting(z.enum(['steer', 'block']).default('steer'), {
      kind: 'string',
      group: 'Sessions, commands and guards',
      flag: '--guardrails-action',
      arg: 'steer|block',
      env: 'GUARDRAILS_ACTION',
      help: 'steer: replace a dangerous call with an explanation; block: refuse the answer',
    }),
    /** The shell guard's block: what it reads as shell commands and the rules it checks them against. */
    shell: ShellGuardSchema.prefault({}),
  })
  .strict();

/**
 * Earlier YAML spellings of settings, still read (README, "Agent guardrails"): `from` is moved to `to` before
 * the environment and flags are laid over, and an error about its value names it as written; both given is
 * an error (config/load.ts).
 */
export const YAML_ALIASES: ReadonlyArray<{ readonly from: string; readonly to: string }> = [
  { from: 'guardrails.shell_tools', to: 'guardrails.shell.tools' },
  { from: 'guardrails.default_rules', to: 'guardrails.shell.default_rules' },
  { from: 'guardrails.rules', to: 'guardrails.shell.rules' },
];

const LoggingSchema = z
  .object({
    level: setting(z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'), {
      kind: 'string',
      group: 'Logging and capture',
      flag: '--log-level',
      arg: 'LEVEL',
      env: 'LOG_LEVEL',
      help: 'trace, debug, info, warn, error, fatal or silent',
    }),
    file: setting(z.string().min(1).optional(), {
      kind: 'string',
      group: 'Logging and capture',
      flag: '--log-file',
      arg: 'PATH',
      env: 'LOG_FILE',
      help: 'Also write JSON log lines to this file',
    }),
    format: setting(z.enum(['auto', 'json', 'pretty']).default('auto'), {
      kind: 'string',
      group: 'Logging and capture',
      flag: '--log-format',
      arg: 'FORMAT',
      env: 'LOG_FORMAT',
      help: 'auto (readable on a terminal, JSON lines otherwise), json or pretty',
    }),
    capture_file: setting(z.string().min(1).optional(), {
      kind: 'string',
      group: 'Logging and capture',
      flag: '--capture-file',
      arg: 'PATH',
      env: 'CAPTURE_FILE',
      help: 'Write a redacted wire capture (JSON Lines) of every request and response',
    }),
    capture_max_bytes: setting(int(0).default(0), {
      kind: 'int',
      group: 'Logging and capture',
      flag: '--capture-max-bytes',
      arg: 'N',
      env: 'CAPTURE_MAX_BYTES',
      help: 'Rotate the capture file at this size (0: never)',
    }),
    capture_max_files: setting(int(1, 1000).default(5), {
      kind: 'int',
      group: 'Logging and capture',
      flag: '--capture-max-files',
      arg: 'N',
      env: 'CAPTURE_MAX_FILES',
      help: 'Rotated capture files kept (PATH.1 … PATH.N)',
    }),
  })
  .strict();

const ResponsesSchema = z
  .object({
    max_stored: setting(int(1).default(10_000), {
      kind: 'int',
      group: 'Server',
      flag: '--responses-max-stored',
      arg: 'N',
      env: 'RESPONSES_MAX_STORED',
      help: 'Responses API: most stored responses kept, in memory (least recently used go first) or, with --state-store redis://…, across all replicas (oldest written go first)',
    }),
    // A time to live, not a timer: a stored response may outlive a timer's longest wait.
    ttl_seconds: setting(z.number().min(1).default(3600), {
      kind: 'number',
      group: 'Server',
      flag: '--responses-ttl',
      arg: 'S',
      env: 'RESPONSES_TTL',
      help: 'Responses API: seconds a stored response is kept (for GET and previous_response_id), in memory or in the shared --state-store',
    }),
  })
  .strict();
/**
 * `resilience.*` (README, Routes and failover): how a request's attempts go. Every field is optional so
 * that a route's overrides and the global section share one shape; `src/routing/settings.ts` fills the
 * defaults. YAML only.
 */
const ResilienceFields = {
  retries: int(0, 10).optional(),
  backoff_s: z.number().min(0).max(60).optional(),
  max_retry_after_s: z.number().min(0).max(3600).optional(),
  ttft_timeout_s: seconds(0.001).optional(),
  stall_timeout_s: seconds(0.001).optional(),
  max_attempts: int(1, 100).optional(),
  deadline_s: seconds(0.001).optional(),
  breaker: z
    .object({ failures: int(1, 1000).optional(), cooldown_s: seconds(0).optional() })
    .strict()
    .optional(),
  /** A text stream cut after the commit point is continued by the next element, by assistant prefill. */
  continue_streams: z.boolean().optional(),
};

export const ResilienceSchema = z
  .object({
    ...ResilienceFields,
    /** Multiplies every duration of this section and the fixed ones (0.5 s gap): a test's fast profile. */
    time_scale: z.number().min(0.0001).max(1).optional(),
  })
  .strict();
export type ResilienceConfig = z.infer<typeof ResilienceSchema>;

const RouteSchema = z
  .object({
    chain: z
      .array(
        z
          .string()
          .min(1)
          .regex(/^[^|]+$/, 'expected one element per entry (no "|")'),
      )
      .min(1),
    ...ResilienceFields,
  })
  .strict();
export type RouteConfig = z.infer<typeof RouteSchema>;

const RoutesSchema = z.record(
  z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected a route name of letters, digits, ".", "_" or "-"'),
  RouteSchema,
);

/** A model's price in USD per million tokens, the models.dev shape (README, Teams: prices). */
const PriceSchema = z
  .object({
    input: z.number().min(0),
    output: z.number().min(0),
    cache_read: z.number().min(0).optional(),
    cache_write: z.number().min(0).optional(),
  })
  .strict();
export type ModelPrice = z.infer<typeof PriceSchema>;

export const ConfigSchema = z
  .object({
    server: ServerSchema.prefault({}),
    responses: ResponsesSchema.prefault({}),
    auth: AuthSchema.prefault({}),
    backends: BackendsSchema.prefault({}),
    logging: LoggingSchema.prefault({}),
    sessions: SessionsSchema.prefault({}),
    loop_guard: LoopGuardSchema.prefault({}),
    guardrails: GuardrailsSchema.prefault({}),
    state: StateSchema.prefault({}),
    routes: RoutesSchema.default({}),
    /** Absent: one attempt per request, as without failover; present (even empty): the defaults apply. */
    resilience: ResilienceSchema.optional(),
    /** Prices by `backend:model` or bare model name, over the shipped table (src/teams/prices.ts). */
    prices: z.record(z.string().min(1), PriceSchema).default({}),
  })
  .strict();

export type ProxyConfig = z.infer<typeof ConfigSchema>;

/** Settings that exist only on the command line or in the environment, not in YAML. */
export const CONFIG_FILE_SETTING: SettingMeta = {
  kind: 'string',
  group: 'Server',
  flag: '--config',
  arg: 'FILE',
  env: 'CONFIG_FILE',
  help: 'YAML configuration file',
  cliOnly: true,
};

/** Environment variables read directly (not settings with a YAML path); listed in --help. */
export const EXTRA_ENV_HELP: Array<{ group: HelpGroup; env: string; help: string }> = [
  {
    group: 'Authentication',
    env: 'LLM_INTERACTIVE_PROXY_API_KEY',
    help: 'The primary proxy key (key name "env")',
  },
  {
    group: 'Authentication',
    env: 'LLM_INTERACTIVE_PROXY_ADMIN_KEY',
    help: 'The admin key (key name "env-admin"): needed for /admin/*, /metrics and /internal/health; also a proxy key',
  },
  { group: 'Authentication', env: 'API_KEYS', help: 'More proxy keys, comma-separated (named API_KEYS[i])' },
  { group: 'Backends', env: 'OPENAI_API_KEY, OPENAI_API_BASE_URL', help: 'openai backend key and base URL' },
  { group: 'Backends', env: 'OPENROUTER_API_KEY, OPENROUTER_API_BASE_URL', help: 'openrouter backend' },
  { group: 'Backends', env: 'ANTHROPIC_API_KEY, ANTHROPIC_API_BASE_URL', help: 'anthropic backend' },
  { group: 'Backends', env: 'GEMINI_API_KEY, GEMINI_API_BASE_URL', help: 'gemini backend' },
  {
    group: 'Shared state',
    env: 'PROXY_STATE_SECRET',
    help: 'Secret (32+ characters) that encrypts what the proxy writes to a Redis state store; required with one',
  },
];
