// Sums self time per function over the .cpuprofile files in a directory (from `node --cpu-prof`) and prints
// the top N, with their share of all samples, then the same time grouped by where the code lives (a package,
// a Portico file, Node's own code, native). Usage: node bench/profile-top.mjs DIR [N]
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const dir = process.argv[2];
const top = Number(process.argv[3] ?? 25);
const self = new Map();
const byPlace = new Map();
// "pino", "undici", "src/proxy/forwarder.ts", "node:_http_server", or "(native)" for C++ and GC entries.
function placeOf(url) {
  if (!url) return '(native)';
  const pkg = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (pkg) return pkg[1];
  const src = url.match(/\/(src\/.+|bin\/.+)$/);
  if (src) return src[1];
  return url.startsWith('node:') ? 'node:' + url.slice(5).split('/')[0] : url;
}
let total = 0; // busy time only: (idle) is reported apart
let idle = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n);
  // timeDeltas[i] is the time before samples[i]; attribute it to that sample's node.
  for (let i = 0; i < prof.samples.length; i++) {
    const node = byId.get(prof.samples[i]);
    const dt = prof.timeDeltas[i] ?? 0;
    const cf = node.callFrame;
    if (cf.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    const where = cf.url ? `${relative(process.cwd(), cf.url.replace(/^file:\/\//, ''))}:${cf.lineNumber + 1}` : '';
    let key = `${cf.functionName || '(anonymous)'} ${where}`.trim();
    // A native function (writev, writeString) says little alone: name its JavaScript caller too.
    const caller = cf.url ? undefined : parent.get(node.id)?.callFrame;
    if (caller?.url) key += ` ← ${caller.functionName || '(anonymous)'} ${caller.url.replace(/^.*\/(node_modules|src)\//, '$1/')}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const place = placeOf(cf.url);
    byPlace.set(place, (byPlace.get(place) ?? 0) + dt);
    total += dt;
  }
}
console.log(`busy ${(total / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms; shares below are of busy time\n`);
const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
console.log('| self % | self ms | function |\n| ---: | ---: | --- |');
for (const [key, us] of rows) console.log(`| ${((100 * us) / total).toFixed(1)} | ${(us / 1000).toFixed(0)} | ${key} |`);
console.log('\n| self % | where |\n| ---: | --- |');
for (const [place, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`| ${((100 * us) / total).toFixed(1)} | ${place} |`);
}
