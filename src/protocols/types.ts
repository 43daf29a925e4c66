/**
 * The wire protocols the proxy speaks, on either side: OpenAI chat completions (`openai`), OpenAI's
 * Responses API (`responses`), Anthropic Messages and Gemini.
 */
export type Protocol = 'openai' | 'anthropic' | 'gemini' | 'responses';
