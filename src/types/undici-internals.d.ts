// undici's internal modules have no type declarations of their own; src/backends/undici-lean.ts gives
// them undici's public types.
declare module 'undici/lib/dispatcher/pool.js';
declare module 'undici/lib/api/index.js';
