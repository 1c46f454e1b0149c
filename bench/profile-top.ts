/**
 * @module Summarises `node --cpu-prof` output: self time per function over the .cpuprofile files in a
 * directory (native functions named with their JavaScript caller), then the same time grouped by where the
 * code lives (a package, a Portico file, Node's own code, native). Idle time is reported apart.
 * Usage: node bench/profile-top.ts DIR [N]
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: node bench/profile-top.ts DIR [N]\n');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 25);

const PACKAGE = /node_modules\/((?:@[^/]+\/)?[^/]+)/;
const PORTICO_FILE = /\/((?:src|bin)\/.+)$/;

/** "pino", "undici", "src/proxy/forwarder.ts", "node:internal", or "(native)" for C++, GC and the like. */
function placeOf(url: string): string {
  if (!url) return '(native)';
  const pkg = PACKAGE.exec(url);
  if (pkg?.[1]) return pkg[1];
  const file = PORTICO_FILE.exec(url);
  if (file?.[1]) return file[1];
  return url.startsWith('node:') ? `node:${url.slice(5).split('/')[0]}` : url;
}

/** A URL without the machine's directories: `pino/lib/tools.js`, `src/proxy/forwarder.ts`, `node:net`. */
function shortUrl(url: string): string {
  const inPackage = url.lastIndexOf('node_modules/');
  if (inPackage >= 0) return url.slice(inPackage + 'node_modules/'.length);
  return PORTICO_FILE.exec(url)?.[1] ?? url;
}

const self = new Map<string, number>();
const byPlace = new Map<string, number>();
let busy = 0;
let idle = 0;

for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n);
  // timeDeltas[i] is the time before samples[i]; it is charged to that sample's node.
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i] ?? -1);
    if (!node) continue;
    const dt = profile.timeDeltas[i] ?? 0;
    const cf = node.callFrame;
    if (cf.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    let key = `${cf.functionName || '(anonymous)'}${cf.url ? ` ${shortUrl(cf.url)}:${cf.lineNumber + 1}` : ''}`;
    const caller = cf.url ? undefined : parent.get(node.id)?.callFrame;
    if (caller?.url) key += ` ← ${caller.functionName || '(anonymous)'} ${shortUrl(caller.url)}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    const place = placeOf(cf.url);
    byPlace.set(place, (byPlace.get(place) ?? 0) + dt);
    busy += dt;
  }
}

const pct = (us: number): string => ((100 * us) / (busy || 1)).toFixed(1);
const lines = [`busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms; shares are of busy time`, ''];
lines.push('| self % | self ms | function |', '| ---: | ---: | --- |');
for (const [key, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  lines.push(`| ${pct(us)} | ${(us / 1000).toFixed(0)} | ${key} |`);
}
lines.push('', '| self % | where |', '| ---: | --- |');
for (const [place, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  lines.push(`| ${pct(us)} | ${place} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
