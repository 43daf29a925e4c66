import type { ModelPrice } from '../config/schema.js';
import shipped from './prices.json' with { type: 'json' };

/**
 * What tokens cost (README, Teams: prices): USD per million tokens, the models.dev shape. The table shipped
 * in the package (`prices.json`, offline) under the YAML `prices:`, which overrides and adds, by
 * `backend:model` or by a bare model name (any backend). A model with no price costs 0; the caller warns
 * once. Lookups are kept per backend and model, so a request's price is one Map read.
 */

/** Tokens of one answer, in the shape of src/protocols/usage.ts (teams knows no protocol). */
export interface UsageTokens {
  readonly input: number;
  readonly output: number;
  readonly cacheRead: number;
  readonly cacheWrite: number;
}

/** A dated version (`-20250929`, `-2024-08-06`) or `-latest` at the end of a model's name. */
const VERSION_SUFFIX = /-(?:\d{8}|\d{4}-\d{2}-\d{2}|latest)$/;

/** The names a model may be priced under, most specific first. */
function namesOf(model: string): string[] {
  const names = [model];
  // OpenRouter's `openai/gpt-4o`, Gemini's `models/gemini-2.5-pro`.
  const bare = model.includes('/') ? model.slice(model.lastIndexOf('/') + 1) : model;
  if (bare !== model) names.push(bare);
  const unversioned = bare.replace(VERSION_SUFFIX, '');
  if (unversioned !== bare) names.push(unversioned);
  return names;
}

/** At most this many backend/model pairs are remembered (model names are the clients' own text). */
const MAX_REMEMBERED = 4096;
/** Longer names are not remembered. */
const MAX_REMEMBERED_NAME = 256;

export class PriceTable {
  private readonly configured: ReadonlyMap<string, ModelPrice>;
  private readonly builtIn: ReadonlyMap<string, ModelPrice>;
  private readonly remembered = new Map<string, ModelPrice | null>();

  constructor(
    overrides: Readonly<Record<string, ModelPrice>> = {},
    builtIn: Readonly<Record<string, ModelPrice>> = shipped.models,
  ) {
    this.configured = new Map(Object.entries(overrides));
    this.builtIn = new Map(Object.entries(builtIn));
  }

  /** The price of `model` on `backend`; null when neither the YAML nor the shipped table has one. */
  priceOf(backend: string, model: string): ModelPrice | null {
    // A name longer than any model's is looked up each time: remembered, a few thousand would hold megabytes.
    if (model.length > MAX_REMEMBERED_NAME) return this.lookUp(backend, model);
    const id = `${backend}:${model}`;
    const known = this.remembered.get(id);
    if (known !== undefined) return known;
    const price = this.lookUp(backend, model);
    if (this.remembered.size >= MAX_REMEMBERED) this.remembered.clear();
    this.remembered.set(id, price);
    return price;
  }

  /**
   * Whether the table names `model` of `backend` itself — as a YAML `backend:model` or bare name, or a shipped
   * name — not only through a dated or prefixed form of it (which any client can make up).
   */
  names(backend: string, model: string): boolean {
    return (
      this.configured.has(`${backend}:${model}`) || this.configured.has(model) || this.builtIn.has(model)
    );
  }

  private lookUp(backend: string, model: string): ModelPrice | null {
    for (const name of namesOf(model)) {
      const price = this.configured.get(`${backend}:${name}`) ?? this.configured.get(name);
      if (price !== undefined) return price;
    }
    for (const name of namesOf(model)) {
      const price = this.builtIn.get(name);
      if (price !== undefined) return price;
    }
    return null;
  }
}

/** USD for `tokens` at `price`; cache tokens without a cache price cost the input price. */
export function costOf(tokens: UsageTokens, price: ModelPrice | null): number {
  if (price === null) return 0;
  const cacheRead = price.cache_read ?? price.input;
  const cacheWrite = price.cache_write ?? price.input;
  return (
    (tokens.input * price.input +
      tokens.output * price.output +
      tokens.cacheRead * cacheRead +
      tokens.cacheWrite * cacheWrite) /
    1_000_000
  );
}
