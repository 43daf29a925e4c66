/** The three wire protocols the proxy speaks, on either side. */
export type Protocol = 'openai' | 'anthropic' | 'gemini';
