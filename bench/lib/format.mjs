// Number formats shared by the benchmark's tables and its SUMMARY line.
export const fmt = {
  rps: (v) => Math.round(v).toLocaleString('en-US'),
  count: (v) => v.toLocaleString('en-US'),
  ms: (v) => v.toFixed(3),
  ratio: (v) => `${v.toFixed(2)}x`,
};

export function verdict(ok) {
  return ok ? 'ok' : 'MISS';
}
