import { capYoungGeneration } from './young-generation.js';

/**
 * The young generation's cap, set before the rest of the proxy is loaded: `main.ts` imports this module
 * first, and ES modules run in import order. Set later, it came too late: loading and starting the proxy
 * (its modules, the configuration's schema) grew the new space to 2 × 16 MB before the cap was in place,
 * and V8 does not give that back under load (docs/performance.md, the attack row's RSS).
 */
capYoungGeneration();
