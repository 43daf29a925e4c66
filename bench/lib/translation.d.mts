// Types of the parts of bench/lib/translation.mjs the tests use (test/bench-translation.test.ts).
export type ClientProtocol = 'openai' | 'anthropic' | 'gemini';

export const TRANSLATION_TARGETS: { stream: number; nonstream: number; capture: number };
export const PROTOCOLS: ClientProtocol[];
export const BACKEND_MODELS: Record<ClientProtocol, string>;
export const CLIENTS: Record<
  ClientProtocol,
  (
    model: string,
    stream: boolean,
  ) => { path: string; headers: Record<string, string>; body: Record<string, unknown> }
>;
export function pairName(client: ClientProtocol, backend: ClientProtocol): string;
export function streamedText(chunks: number): string;
export function readStream(
  client: ClientProtocol,
  body: string,
): { text: string; ended: boolean; events: unknown[] };

export interface TranslationRow {
  name: string;
  client: ClientProtocol;
  backend: ClientProtocol;
  reference: string;
  capture: boolean;
  /** The capture pair's reference: the same pair on an instance with capture off. */
  captureOff?: boolean;
  reqPerSec: number;
  mean: number;
  p99: number;
  cpuUs: number;
  refCpuUs: number;
  ratio: number;
}
/** The project's RSS in MB through the part: at its start, its peak, after the load, after `idleS` of idle. */
export interface TranslationMemory {
  startMb: number;
  peakMb: number;
  endMb: number;
  idleMb: number;
  idleS: number;
}
export function translationSummary(
  scenarios: Array<{ stream: boolean; rows: TranslationRow[] }>,
  memory?: TranslationMemory | null,
): {
  line: string;
  allOk: boolean;
};
export function translationConfig(env: Record<string, string | undefined>): {
  capturePair: string;
  idleS: number;
};

/** A process the part measures: its origin and pid. */
export interface TranslationInstance {
  origin: string;
  pid: number;
}
export interface TranslationTarget {
  name: string;
  client: ClientProtocol;
  backend: ClientProtocol;
  origin: string;
  pid: number;
  /** The target whose req/s, in the same round, this one's is divided by. */
  reference: string;
  capture?: boolean;
  captureOff?: boolean;
  streamOnly?: boolean;
}
export function translationTargets(instances: {
  project: TranslationInstance;
  captured: TranslationInstance;
  uncaptured: TranslationInstance;
  capturePair: string;
}): TranslationTarget[];
export function scenarioRows(
  targets: TranslationTarget[],
  runs: Map<string, Array<{ reqPerSec: number; mean: number; p99: number; cpuUs: number }>>,
): TranslationRow[];
