// prom-client's internal modules have no type declarations of their own; src/observability/prom-lean.ts
// gives them prom-client's public types.
declare module 'prom-client/lib/*';
