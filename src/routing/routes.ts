import type { ResilienceConfig, RouteConfig } from '../config/schema.js';
import { attemptSettings, type AttemptSettings } from './settings.js';

/** How one request is tried: its chain of elements (`backend:model` or a default backend's model). */
export interface AttemptPlan {
  /** The route's name, or null for a chain written in the request (`a|b`) or a single model. */
  readonly name: string | null;
  readonly elements: readonly string[];
  readonly settings: AttemptSettings;
}

/**
 * The routes of the YAML `routes:` section and the `a|b|c` chains of requests (README, Routes and failover).
 * `plan` answers null for a request that takes one attempt, as without failover: a plain model when no
 * `resilience:` section is configured — that request's path is the same as before routes existed.
 */
export class RouteTable {
  private readonly named = new Map<string, AttemptPlan>();
  /** Settings for chains written in requests (and single models when `resilience:` is configured). */
  private readonly global: AttemptSettings;
  private readonly everyRequest: boolean;

  constructor(
    routes: Readonly<Record<string, RouteConfig>>,
    resilience: ResilienceConfig | undefined,
    timeoutMs: number,
  ) {
    this.global = attemptSettings(resilience, undefined, timeoutMs);
    this.everyRequest = resilience !== undefined;
    for (const [name, route] of Object.entries(routes)) {
      const { chain, ...overrides } = route;
      this.named.set(name, {
        name,
        elements: chain,
        settings: attemptSettings(resilience, overrides, timeoutMs),
      });
    }
  }

  plan(model: string): AttemptPlan | null {
    if (this.named.size > 0) {
      const named = this.named.get(model);
      if (named !== undefined) return named;
    }
    if (model.includes('|')) {
      const elements = model
        .split('|')
        .map((e) => e.trim())
        .filter((e) => e.length > 0);
      return { name: null, elements, settings: this.global };
    }
    return this.everyRequest ? { name: null, elements: [model], settings: this.global } : null;
  }

  /** Route names, for the model lists. */
  names(): string[] {
    return [...this.named.keys()];
  }

  /** A named route's chain (what `!/route(name)` and `!/session` show); undefined for any other name. */
  chain(name: string): readonly string[] | undefined {
    return this.named.get(name)?.elements;
  }
}
