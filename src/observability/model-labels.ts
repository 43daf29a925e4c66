/**
 * The name a model is counted under in /metrics, /admin/usage and the usage ledger's aggregates (README,
 * Teams: usage). A request's `model` is the client's own text, and the embedded mock (or a server that
 * ignores the field) answers any: counted by name, a client sending a new name per request would grow every
 * per-model structure without limit. So a model the configuration knows — a route's element, the default
 * backend's model, a name of the price table — counts under its own name; any other under its own name
 * while fewer than `maxOthers` such names (per backend and model, in this process) were seen, then as
 * `other`. A name longer than `MAX_MODEL_LABEL_LENGTH` counts as `other`.
 *
 * A name is redacted first (README, Key hygiene): a configured secret sent as a model's name is counted, and
 * written to the usage file, as its mask (`****`, `sk-proj-****`), never as itself.
 */

import type { Redactor } from '../redaction/redactor.js';

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
  /** The redactor in force (rebuilt when keys rotate); none: names are taken as they are. */
  redactor?: () => Pick<Redactor, 'redactValue'>;
}

export class ModelLabels {
  private readonly known: (backend: string, model: string) => boolean;
  private readonly maxOthers: number;
  /** The unknown names admitted under their own name, by `backend\0model`: at most `maxOthers`. */
  private readonly others = new Set<string>();
  private readonly redactor: (() => Pick<Redactor, 'redactValue'>) | null;
  /**
   * The last name judged and written, with the redactor they were redacted by: a client's usual case is the
   * same model again, judged with no lookup.
   */
  private last: { backend: string; model: string; label: string; by: unknown } | null = null;
  private lastWritten: { model: string; written: string; by: unknown } | null = null;

  constructor(options: ModelLabelOptions = {}) {
    this.known = options.known ?? (() => false);
    this.maxOthers = options.maxOthers ?? DEFAULT_MAX_OTHER_MODELS;
    this.redactor = options.redactor ?? null;
  }

  /** The name `model` of `backend` is counted under. */
  of(backend: string, model: string): string {
    const by = this.redactor?.() ?? null;
    const last = this.last;
    if (last !== null && last.model === model && last.backend === backend && last.by === by)
      return last.label;
    const label = this.judge(backend, this.redacted(model, by));
    this.last = { backend, model, label, by };
    return label;
  }

  /** `model`'s own name as the proxy writes it where it keeps every name (the usage file): redacted. */
  written(model: string): string {
    const by = this.redactor?.() ?? null;
    const last = this.lastWritten;
    if (last !== null && last.model === model && last.by === by) return last.written;
    const written = this.redacted(model, by);
    this.lastWritten = { model, written, by };
    return written;
  }

  /** Redacted as a whole value: a short configured secret that is the whole name is masked too. */
  private redacted(model: string, by: Pick<Redactor, 'redactValue'> | null): string {
    return by === null ? model : (by.redactValue(model) as string);
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
