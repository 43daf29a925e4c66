/**
 * Codex's tools as a translated backend can take them (README, "Responses API"). Codex CLI declares its
 * tools in `additional_tools` input items rather than `tools`, grouped in `namespace` entries: `functions`
 * (its shell, its code cell `exec`, …), and others (`clock`, `collaboration`, …). OpenAI's API reads them
 * there; every other backend takes one flat list of named tools. So the proxy flattens them: a tool of the
 * default namespace keeps its name, any other becomes `<namespace>__<name>` (letters, digits, `_` and `-`
 * are all that every provider takes in a tool name), and a call of that name goes back to the client as
 * the namespace's call: `name` and `namespace`.
 */
import { isRecord, type Json } from '../shared.js';

/** The namespace whose tools the model calls by their bare names (OpenAI's `functions.<name>`). */
export const DEFAULT_NAMESPACE = 'functions';
const SEPARATOR = '__';

/** A tool of a namespace, as the client named it. */
export interface NamespacedName {
  readonly namespace: string;
  readonly name: string;
}

/** The flat name a backend is given for `name` of `namespace` (none: the default namespace). */
export function flatToolName(namespace: unknown, name: string): string {
  return typeof namespace !== 'string' || namespace === '' || namespace === DEFAULT_NAMESPACE
    ? name
    : `${namespace}${SEPARATOR}${name}`;
}

/** The request's tools, flat, and what each flat name of a namespace's tool stands for. */
export interface FlatTools {
  /**
   * `tools`, then the tools of every `additional_tools` input item; a name given twice, the first. Entries
   * that are not objects are left as they came, for the decoder to refuse by name.
   */
  readonly tools: unknown[];
  /** Flat names of tools outside the default namespace → their namespace and name. */
  readonly namespaced: ReadonlyMap<string, NamespacedName>;
}

const NONE: ReadonlyMap<string, NamespacedName> = new Map();

/**
 * The tools of a Responses request, flattened (see above). A request without namespaces or
 * `additional_tools` items — every client but Codex — gets its own `tools` array back, not copied.
 */
export function flattenTools(body: Json): FlatTools {
  const own = Array.isArray(body.tools) ? (body.tools as unknown[]) : [];
  const extra: unknown[] = [];
  if (Array.isArray(body.input)) {
    for (const item of body.input) {
      if (isRecord(item) && item.type === 'additional_tools' && Array.isArray(item.tools))
        extra.push(...(item.tools as unknown[]));
    }
  }
  if (extra.length === 0 && !own.some((tool) => isRecord(tool) && tool.type === 'namespace'))
    return { tools: own, namespaced: NONE };
  const tools: unknown[] = [];
  const namespaced = new Map<string, NamespacedName>();
  const seen = new Set<string>();
  const add = (tool: Json, name: string) => {
    if (seen.has(name)) return;
    seen.add(name);
    tools.push(tool.name === name ? tool : { ...tool, name });
  };
  for (const tool of [...own, ...extra]) {
    if (!isRecord(tool)) {
      tools.push(tool);
      continue;
    }
    if (tool.type !== 'namespace') {
      if (typeof tool.name === 'string') add(tool, tool.name);
      else tools.push(tool);
      continue;
    }
    const namespace = typeof tool.name === 'string' ? tool.name : '';
    for (const inner of Array.isArray(tool.tools) ? (tool.tools as unknown[]) : []) {
      if (!isRecord(inner) || typeof inner.name !== 'string') continue;
      const flat = flatToolName(namespace, inner.name);
      if (flat !== inner.name && !seen.has(flat)) namespaced.set(flat, { namespace, name: inner.name });
      add(inner, flat);
    }
  }
  return { tools, namespaced };
}
