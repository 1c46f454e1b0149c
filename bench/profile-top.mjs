// Sums self time per function over the .cpuprofile files in a directory (from `node --cpu-prof`) and prints
// the top N, with their share of all samples. Usage: node bench/profile-top.mjs DIR [N]
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const dir = process.argv[2];
const top = Number(process.argv[3] ?? 25);
const self = new Map();
let total = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  // timeDeltas[i] is the time before samples[i]; attribute it to that sample's node.
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byId.get(prof.samples[i]);
    const dt = prof.timeDeltas[i] ?? 0;
    const cf = node.callFrame;
    const where = cf.url ? `${relative(process.cwd(), cf.url.replace(/^file:\/\//, ''))}:${cf.lineNumber + 1}` : '';
    const key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  }
}
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
console.log('| self % | self ms | function |\n| ---: | ---: | --- |');
for (const [key, us] of rows) console.log(`| ${((100 * us) / total).toFixed(1)} | ${(us / 1000).toFixed(0)} | ${key} |`);
