/**
 * What providers' error messages mean, read by both the protocols (the codes agents act on) and failover
 * (where a failure goes next): one pattern each, so that the two never disagree.
 */

/**
 * A prompt too long for the model, in each provider's words: OpenAI's code, Anthropic's two messages
 * ("prompt is too long", "input length and `max_tokens` exceed context limit"), Gemini's, vLLM's and
 * OpenRouter's. Failover reads it (src/routing/policy.ts: another model may take the prompt), and the codecs name it
 * OpenAI's `context_length_exceeded` (src/protocols/shared.ts).
 */
export const CONTEXT_TOO_LONG =
  /context_length_exceeded|prompt is too long|maximum context length|exceeds the maximum number of tokens|exceed context limit|context window/i;
