// Summarises a V8 .cpuprofile (from `node --cpu-prof`): where the CPU time went, by function (self time)
// and by package, so a hot spot is visible without opening DevTools.
import { readFileSync } from 'node:fs';

function selfTimeByNode(profile) {
  const selfUs = new Map();
  const { samples, timeDeltas } = profile;
  // timeDeltas[i] is the time before sample i; attribute it to that sample's node.
  for (let i = 0; i < samples.length; i++) {
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + (timeDeltas[i] ?? 0));
  }
  return selfUs;
}

function frameKey(cf) {
  return `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}:${cf.lineNumber + 1}`;
}

/**
 * Inclusive time (self plus callees) of the functions that `wanted` selects: the time a request spends
 * under, say, the auth hook, whatever library code it calls. Recursion is counted once per sample.
 */
function inclusiveTime(profile, selfUs, wanted) {
  const parent = new Map();
  const byId = new Map();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const totals = new Map();
  for (const [id, us] of selfUs) {
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const cf = byId.get(at).callFrame;
      if (!wanted(cf)) continue;
      const key = frameKey(cf);
      if (seen.has(key)) continue;
      seen.add(key);
      totals.set(key, (totals.get(key) ?? 0) + us);
    }
  }
  return totals;
}

function shortUrl(url) {
  if (!url) return '';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) return url.slice(nm + '/node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}

/** Which bucket a frame's time belongs to: a dependency, the project, Node internals, GC, idle. */
function packageOf(callFrame) {
  const { url, functionName } = callFrame;
  if (!url) {
    if (functionName === '(program)' || functionName === '(garbage collector)') {
      return functionName;
    }
    return '(native)';
  }
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/dist/')) return 'project (dist/)';
  return url;
}

/** Top functions by self time and the split by package, in milliseconds and percent of busy time. */
export function summariseProfile(file, top = 25) {
  const profile = JSON.parse(readFileSync(file, 'utf8'));
  const selfUs = selfTimeByNode(profile);
  const byFunction = new Map();
  const byPackage = new Map();
  let totalUs = 0;
  let idleUs = 0;
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const cf = node.callFrame;
    // Idle time is the process waiting (e.g. while the benchmark drives another target): not a hot spot.
    if (!cf.url && cf.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    totalUs += us;
    const key = frameKey(cf);
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const pkg = packageOf(cf);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + us);
  }
  const inclusive = inclusiveTime(profile, selfUs, (cf) => packageOf(cf) === 'project (dist/)');
  const rank = (map) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: us / 1000, percent: (100 * us) / totalUs }));
  return {
    busyMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    functions: rank(byFunction).slice(0, top),
    packages: rank(byPackage),
    projectInclusive: rank(inclusive).slice(0, top),
  };
}

export function formatProfileSummary({ busyMs, idleMs, functions, packages, projectInclusive }) {
  const line = ({ name, ms, percent }) =>
    `  ${percent.toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(7)} ms  ${name}`;
  return [
    `CPU profile: ${busyMs.toFixed(0)} ms busy (${idleMs.toFixed(0)} ms idle, left out); percentages of busy time`,
    'self time by package:',
    ...packages.slice(0, 15).map(line),
    'top functions by self time:',
    ...functions.map(line),
    'project functions by inclusive time (self + everything they call):',
    ...projectInclusive.map(line),
  ].join('\n');
}
