/** Types of the coding-agent harness (index.mjs); README.md beside it says how the agents are installed. */

export type AgentName = 'claude' | 'gemini' | 'codex' | 'opencode';
/** The protocol an agent speaks: the proxy front-end it needs. */
export type AgentProtocol = 'anthropic' | 'gemini' | 'openai' | 'responses';

export interface AgentSetup {
  args: string[];
  env: Record<string, string>;
  /** Config files to write, by path relative to the throw-away home. */
  files: Record<string, string>;
}

export interface Agent {
  package: string;
  bin: string;
  protocol: AgentProtocol;
  /** The base URL the agent is given for a server root (Codex and opencode add `/v1`). */
  baseUrl(root: string): string;
  setup(options: { baseUrl: string; apiKey: string; home: string; sinkRoot: string }): AgentSetup;
}

export declare const AGENTS: Readonly<Record<AgentName, Agent>>;
export declare const MANIFEST: string;
export declare const LOCK: string;
export declare const INSTALLED_MARKER: string;
export declare const REGISTRY_SINK: string;
export declare const PROMPT: string;

export declare function agentsDir(env?: NodeJS.ProcessEnv): string;
export declare function agentBin(name: AgentName, env?: NodeJS.ProcessEnv): string;
export declare function agentVersion(name: AgentName, env?: NodeJS.ProcessEnv): string;

export interface AgentResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the agent was still running at the deadline (and was killed). */
  timedOut: boolean;
}

export declare function runAgent(
  name: AgentName,
  options: {
    root: string;
    apiKey: string;
    sinkRoot?: string;
    deadlineMs?: number;
    env?: Record<string, string>;
    /** A command line the agent runs under, e.g. `['strace', '-f', …]`. */
    wrapper?: string[];
  },
): Promise<AgentResult>;
