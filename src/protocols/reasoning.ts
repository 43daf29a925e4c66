/**
 * Reasoning controls, any protocol to any other, through ONE table (README, "Reasoning controls"): each effort
 * level with the thinking budget it stands for and each protocol's own word for it. Decoders read the client's
 * control into a `ReasoningControl`; encoders write it in the backend's terms with the functions below.
 */
import type { ChatRequest, ReasoningControl, ReasoningEffort } from './canonical.js';

export interface ReasoningRow {
  effort: ReasoningEffort;
  /** Thinking tokens this level stands for: Anthropic `budget_tokens`, Gemini `thinkingBudget`. */
  budget: number;
  /** OpenAI chat `reasoning_effort`. */
  openai: string;
  /** Responses `reasoning.effort`. */
  responses: string;
  /** Anthropic `output_config.effort`. */
  anthropic: string;
  /** Gemini `thinkingConfig.thinkingLevel`. */
  gemini: string;
}

/** Ordered from least to most thinking; a budget maps to the first level whose budget covers it. */
export const REASONING_TABLE: readonly ReasoningRow[] = [
  {
    effort: 'minimal',
    budget: 1024,
    openai: 'minimal',
    responses: 'minimal',
    anthropic: 'low',
    gemini: 'minimal',
  },
  { effort: 'low', budget: 4096, openai: 'low', responses: 'low', anthropic: 'low', gemini: 'low' },
  {
    effort: 'medium',
    budget: 12288,
    openai: 'medium',
    responses: 'medium',
    anthropic: 'medium',
    gemini: 'medium',
  },
  { effort: 'high', budget: 24576, openai: 'high', responses: 'high', anthropic: 'high', gemini: 'high' },
  { effort: 'max', budget: 32768, openai: 'xhigh', responses: 'xhigh', anthropic: 'max', gemini: 'high' },
];

/** The level a client gave without one: what every protocol defaults to. */
const DEFAULT_EFFORT: ReasoningEffort = 'medium';

export type ReasoningColumn = 'openai' | 'responses' | 'anthropic' | 'gemini';

/** A protocol's word for an effort level, as a level; undefined for a word the table does not know. */
export function effortFromWire(column: ReasoningColumn, word: string): ReasoningEffort | undefined {
  const w = word.toLowerCase();
  return (
    REASONING_TABLE.find((r) => r.effort === w && r[column] === w)?.effort ??
    REASONING_TABLE.find((r) => r[column] === w)?.effort
  );
}

function row(effort: ReasoningEffort): ReasoningRow {
  return REASONING_TABLE.find((r) => r.effort === effort) as ReasoningRow;
}

/** The level a thinking budget stands for. */
export function effortForBudget(budget: number): ReasoningEffort {
  const most = REASONING_TABLE[REASONING_TABLE.length - 1] as ReasoningRow;
  return (REASONING_TABLE.find((r) => r.budget >= budget) ?? most).effort;
}

/** The level of a control: its own, else its budget's, else the default. */
export function reasoningEffort(control: ReasoningControl): ReasoningEffort {
  if (control.effort !== undefined) return control.effort;
  return control.budgetTokens !== undefined ? effortForBudget(control.budgetTokens) : DEFAULT_EFFORT;
}

/** The budget of a control: its own, else its level's. */
export function reasoningBudget(control: ReasoningControl): number {
  return control.budgetTokens ?? row(reasoningEffort(control)).budget;
}

/** A protocol's word for the control's level. */
export function reasoningWord(control: ReasoningControl, column: ReasoningColumn): string {
  return row(reasoningEffort(control))[column];
}

/** The levels of `!/set(reasoning=…)` (README, "In-chat commands"): rows of the table, or off. */
export type ReasoningSetting = 'off' | 'low' | 'medium' | 'high';

/** The session's reasoning as a control of the table's, or undefined for off. */
export function settingControl(setting: ReasoningSetting): ReasoningControl | undefined {
  return setting === 'off' ? undefined : { mode: 'enabled', effort: setting, insist: true };
}

/**
 * A session's reasoning setting on a request of any protocol, before it is encoded for the backend: it
 * replaces the client's control (the client's wish to see thoughts stays), so every backend gets it through
 * this table, whatever protocol the client spoke.
 */
export function applyReasoningSetting(req: ChatRequest, setting: ReasoningSetting): void {
  const control = settingControl(setting);
  const includeThoughts = req.reasoning?.includeThoughts;
  req.reasoning = control && (includeThoughts ? { ...control, includeThoughts } : control);
  req.reasoningOff = setting === 'off' ? true : undefined;
}

/** Tokens left for the answer above a thinking budget the session raised `max_tokens` for. */
const ANSWER_ROOM = 1024;

/**
 * Anthropic's `max_tokens` beside thinking the session asked for: above the budget, with room for an answer
 * after it, and never below the client's own limit.
 */
export function maxTokensWithThinking(maxTokens: number, budget: number): number {
  return Math.max(maxTokens, budget + ANSWER_ROOM);
}

/**
 * The sampling settings Anthropic refuses beside thinking (README, "Reasoning controls"), by their wire
 * names, each with the values it refuses: a client's own stay and its reasoning control is dropped; the
 * session's reasoning replaces them.
 */
const ANTHROPIC_THINKING_REFUSES: ReadonlyArray<
  readonly [field: 'temperature' | 'top_k' | 'top_p', refused: (value: number) => boolean]
> = [
  ['temperature', (value) => value !== 1],
  ['top_k', () => true],
  ['top_p', (value) => value < 0.95],
];

/** The fields of an Anthropic body that Anthropic refuses beside thinking. */
export function refusedBesideThinking(body: Record<string, unknown>): string[] {
  return ANTHROPIC_THINKING_REFUSES.flatMap(([field, refused]) => {
    const value = body[field];
    return typeof value === 'number' && refused(value) ? [field] : [];
  });
}
