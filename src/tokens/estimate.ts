import type { Protocol } from '../protocols/types.js';
import { requestText } from './request-text.js';
import { textCounter } from './text-tokens.js';

/**
 * A request's input tokens as a provider of one family would count them, estimated locally (README,
 * Token counting): the text's tokens (text-tokens.ts) times the family's calibration factor, plus what each
 * message, image and tool list adds. The numbers and why they were chosen: docs/token-counting.md.
 */
export interface FamilyCalibration {
  /** The family's tokens per `cl100k_base` token on English prose and code. */
  readonly factor: number;
  /** Added once per request (the reply's priming, the first turn's markers). */
  readonly base: number;
  readonly perMessage: number;
  /** One image, whatever its size (the size is not read). */
  readonly perImage: number;
  /** Added when tools are offered (Anthropic's tool-use system prompt). */
  readonly withTools: number;
}

export const CALIBRATION: Readonly<Record<Protocol, FamilyCalibration>> = {
  openai: { factor: 1, base: 3, perMessage: 3, perImage: 765, withTools: 0 },
  anthropic: { factor: 1.15, base: 3, perMessage: 3, perImage: 1600, withTools: 346 },
  gemini: { factor: 1.12, base: 0, perMessage: 1, perImage: 258, withTools: 0 },
  // The Responses API is OpenAI's: its models, its tokenizer.
  responses: { factor: 1, base: 3, perMessage: 3, perImage: 765, withTools: 0 },
};

/**
 * The estimated input tokens of a token-count request `body` for a backend of protocol `family`: never 0
 * for a request that holds anything, 0 only for one that holds nothing at all.
 */
export async function estimateInputTokens(body: Record<string, unknown>, family: Protocol): Promise<number> {
  const found = requestText(body);
  const calibration = CALIBRATION[family];
  const textTokens = found.text.length === 0 ? 0 : (await textCounter())(found.text);
  const estimate =
    Math.round(textTokens * calibration.factor) +
    found.messages * calibration.perMessage +
    found.images * calibration.perImage +
    (found.tools ? calibration.withTools : 0);
  const empty = found.text.length === 0 && found.messages === 0 && found.images === 0;
  return empty ? 0 : Math.max(1, estimate + calibration.base);
}
