#!/usr/bin/env node
// Prints where a V8 CPU profile spent its time: node bench/profile-summary.mjs FILE.cpuprofile [TOP]
import { formatProfileSummary, summariseProfile } from './lib/profile.mjs';

const [file, top] = process.argv.slice(2);
if (!file) {
  console.error('usage: node bench/profile-summary.mjs FILE.cpuprofile [TOP]');
  process.exit(2);
}
console.log(formatProfileSummary(summariseProfile(file, Number(top ?? 25))));
