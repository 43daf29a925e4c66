/**
 * The name a model is counted under in /metrics, /admin/usage and the usage ledger's aggregates (README,
 * Teams: usage). A request's `model` is the client's own text, and the embedded mock (or a server that
 * ignores the field) answers any: counted by name, a client sending a new name per request would grow every
 * per-model structure without limit. So a model the configuration knows — a route's element, the default
 * backend's model, a name of the price table — counts under its own name; any other under its own name
 * while fewer than `maxOthers` such names (per backend and model, in this process) were seen, then as
 * `other`. A name longer than `MAX_MODEL_LABEL_LENGTH` counts as `other`.
 */

/** What a model beyond the cap (or with too long a name) is counted as. */
export const OTHER_MODEL = 'other';

/** How many names the configuration does not know are counted under their own name, per process. */
export const DEFAULT_MAX_OTHER_MODELS = 200;

/** Longer names are never a label of their own (a model's name is a few dozen characters). */
export const MAX_MODEL_LABEL_LENGTH = 256;

export interface ModelLabelOptions {
  /** Whether the configuration names `model` of `backend` (a route, the default model, a price). */
  known?: (backend: string, model: string) => boolean;
  maxOthers?: number;
}

export class ModelLabels {
  private readonly known: (backend: string, model: string) => boolean;
  private readonly maxOthers: number;
  /** The unknown names admitted under their own name, by `backend\0model`: at most `maxOthers`. */
  private readonly others = new Set<string>();
  /** The last name judged: a client's usual case is the same model again, judged with no lookup. */
  private last: { backend: string; model: string; label: string } | null = null;

  constructor(options: ModelLabelOptions = {}) {
    this.known = options.known ?? (() => false);
    this.maxOthers = options.maxOthers ?? DEFAULT_MAX_OTHER_MODELS;
  }

  /** The name `model` of `backend` is counted under. */
  of(backend: string, model: string): string {
    const last = this.last;
    if (last !== null && last.model === model && last.backend === backend) return last.label;
    const label = this.judge(backend, model);
    this.last = { backend, model, label };
    return label;
  }

  /**
   * A circuit breaker's element (`backend:model`, src/state/breakers.ts) as /metrics names it: its model
   * counted as `of` counts it.
   */
  ofElement(element: string): string {
    const cut = element.indexOf(':');
    if (cut < 0) return element;
    const backend = element.slice(0, cut);
    return `${backend}:${this.of(backend, element.slice(cut + 1))}`;
  }

  private judge(backend: string, model: string): string {
    if (model === OTHER_MODEL || model.length > MAX_MODEL_LABEL_LENGTH) return OTHER_MODEL;
    if (this.known(backend, model)) return model;
    const id = `${backend}\u0000${model}`;
    if (this.others.has(id)) return model;
    if (this.others.size >= this.maxOthers) return OTHER_MODEL;
    this.others.add(id);
    return model;
  }
}
