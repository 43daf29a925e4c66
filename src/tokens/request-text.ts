/**
 * What a token-count request holds, read the same way for every protocol: the text of its system prompt,
 * messages and tools; how many messages and images. Field names differ between protocols only in where
 * they sit (Anthropic `messages`/`system`/`tools`, Gemini `contents`/`systemInstruction`/`tools`, or all
 * of them inside `generateContentRequest`), so one walk with a few tables of names reads them all.
 */
export interface RequestText {
  /** Every piece of text, joined by newlines. */
  text: string;
  /** Turns in the conversation (messages, contents). */
  messages: number;
  images: number;
  /** Tool definitions were offered. */
  tools: boolean;
}

/** Arrays of turns: each entry is one message. */
const MESSAGE_LISTS = new Set(['messages', 'contents']);
/** Tool definitions: counted as their JSON text (names, descriptions and schemas all cost tokens). */
const TOOL_LISTS = new Set(['tools', 'functionDeclarations']);
/**
 * Strings that are not prompt text: the model, roles and block types, media types, ids, and base64 data
 * (an image's cost is a fixed number of tokens, not its bytes).
 */
const NOT_TEXT = new Set([
  'model',
  'role',
  'type',
  'media_type',
  'mimeType',
  'mime_type',
  'id',
  'tool_use_id',
  'data',
  'signature',
  'cache_control',
]);
/** Block types that are images (Anthropic `image`, OpenAI `image_url` / `input_image`). */
const IMAGE_TYPES = new Set(['image', 'image_url', 'input_image']);
/** Gemini's inline and referenced media parts. */
const MEDIA_PARTS = ['inlineData', 'fileData'] as const;

function isImage(node: Record<string, unknown>): boolean {
  if (typeof node.type === 'string' && IMAGE_TYPES.has(node.type)) return true;
  return MEDIA_PARTS.some((key) => typeof node[key] === 'object' && node[key] !== null);
}

/** Reads the text, turns, images and tools of a token-count request body (a JSON object). */
export function requestText(body: Record<string, unknown>): RequestText {
  const pieces: string[] = [];
  const found: RequestText = { text: '', messages: 0, images: 0, tools: false };
  const walk = (node: unknown, key: string | undefined): void => {
    if (typeof node === 'string') {
      if (key === undefined || !NOT_TEXT.has(key)) pieces.push(node);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    if (Array.isArray(node)) {
      if (key !== undefined && MESSAGE_LISTS.has(key)) found.messages += node.length;
      if (key !== undefined && TOOL_LISTS.has(key)) {
        if (node.length > 0) found.tools = true;
        pieces.push(JSON.stringify(node));
        return;
      }
      for (const item of node) walk(item, key);
      return;
    }
    const record = node as Record<string, unknown>;
    if (isImage(record)) {
      found.images += 1;
      return;
    }
    for (const name of Object.keys(record)) walk(record[name], name);
  };
  walk(body, undefined);
  found.text = pieces.join('\n');
  return found;
}
