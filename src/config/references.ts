/**
 * @module Checks between parts of the config that the schema alone cannot see: unique names and addresses,
 * routes and listeners naming upstreams and policies that exist, the right kind of targets for each use,
 * rewrite regexes that compile and route paths and hosts the router understands.
 *
 * Runs on the plain (reference-substituted) value even when the schema found problems, so one load reports
 * everything; it therefore reads defensively and skips whatever has the wrong shape (the schema reports that).
 */
import { validateRouteHost } from '../proxy/router.ts';
import type { ConfigPath } from './positions.ts';
import { didYouMean } from './suggest.ts';

export interface ReferenceIssue {
  readonly path: ConfigPath;
  readonly message: string;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** `[index, item]` for every map item of a list (others are the schema's problem). */
function entries(v: unknown): Array<[number, Obj]> {
  if (!Array.isArray(v)) return [];
  const out: Array<[number, Obj]> = [];
  v.forEach((item, i) => {
    if (isObj(item)) out.push([i, item]);
  });
  return out;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Flags the second and later items of `list` whose `field` repeats an earlier one. */
function checkUnique(
  section: string,
  list: Array<[number, Obj]>,
  field: string,
  what: string,
  issues: ReferenceIssue[],
) {
  const first = new Map<string, number>();
  for (const [i, item] of list) {
    const value = str(item[field]);
    if (value === undefined) continue;
    // Port 0 asks the system for any free port: two such listeners never collide.
    if (field === 'address' && value.endsWith(':0')) continue;
    const key = field === 'address' ? value.toLowerCase() : value;
    const seen = first.get(key);
    if (seen === undefined) first.set(key, i);
    else issues.push({ path: [section, i, field], message: `duplicate ${what} "${value}" (also ${section}[${seen}])` });
  }
}

type TargetKind = 'url' | 'address' | 'mixed' | 'none';

function targetKind(upstream: Obj): TargetKind {
  let url = false;
  let address = false;
  for (const [, t] of entries(upstream.targets)) {
    if (t.url !== undefined) url = true;
    if (t.address !== undefined) address = true;
  }
  if (url && address) return 'mixed';
  return url ? 'url' : address ? 'address' : 'none';
}

const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/;
// RFC 3986 path characters, minus `:`, `*`, `(` and `)` that the router reads as syntax.
const LITERAL = /^[A-Za-z0-9\-._~!$&'+,;=@%]+$/;

/** Why a route path is not `/exact`, `/a/:param` or `/prefix/*`; undefined when it is fine. */
export function routePathProblem(path: string): string | undefined {
  if (!path.startsWith('/')) return undefined; // the schema reports it
  const segments = path.slice(1).split('/');
  const params = new Set<string>();
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    const last = i === segments.length - 1;
    if (seg === '*') {
      if (!last) return '"*" is only allowed as the last segment, as in /static/*';
      continue;
    }
    if (seg === '') {
      if (last) continue; // `/` and `/users/` are exact paths
      return 'empty path segment ("//")';
    }
    if (seg.startsWith(':')) {
      if (!PARAM.test(seg)) return `bad parameter "${seg}": write :name with letters, digits and "_"`;
      if (params.has(seg)) return `parameter "${seg}" appears twice`;
      params.add(seg);
      continue;
    }
    if (seg.includes('*') && LITERAL.test(seg.replaceAll('*', 'x'))) {
      const prefix = [...segments.slice(0, i), seg.replaceAll('*', '')].filter(Boolean).join('/');
      return `"*" must be a whole last segment (write /${prefix}/* for a prefix)`;
    }
    if (!LITERAL.test(seg))
      return `segment "${seg}" has characters a path may not hold (only /exact, /:param and a trailing /* are supported)`;
  }
  return undefined;
}

/** All cross-reference problems in `config` (the plain value, before or after schema checks). */
export function checkReferences(config: unknown): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  if (!isObj(config)) return issues;
  const listeners = entries(config.listeners);
  const upstreams = entries(config.upstreams);
  const routes = entries(config.routes);
  const consumers = entries(config.consumers);

  checkUnique('listeners', listeners, 'name', 'listener name', issues);
  checkUnique('listeners', listeners, 'address', 'listener address', issues);
  checkUnique('upstreams', upstreams, 'name', 'upstream name', issues);
  checkUnique('routes', routes, 'name', 'route name', issues);
  checkUnique('consumers', consumers, 'name', 'consumer name', issues);

  const upstreamByName = new Map<string, Obj>();
  for (const [, u] of upstreams) {
    const n = str(u.name);
    if (n !== undefined && !upstreamByName.has(n)) upstreamByName.set(n, u);
  }
  const upstreamNames = [...upstreamByName.keys()];
  const policyNames = isObj(config.policies) ? Object.keys(config.policies) : [];

  const adminAddress = isObj(config.admin) ? str(config.admin.address) : undefined;
  for (const [i, l] of listeners) {
    const protocol = str(l.protocol);
    const upstream = str(l.upstream);
    // Port 0 asks the system for any free port: it never collides.
    if (
      adminAddress !== undefined &&
      !adminAddress.endsWith(':0') &&
      str(l.address)?.toLowerCase() === adminAddress.toLowerCase()
    ) {
      issues.push({
        path: ['admin', 'address'],
        message: `admin address ${adminAddress} is also listeners[${i}]'s address`,
      });
    }
    if (protocol === 'tcp' || protocol === 'tls') {
      // A tls listener's SNI routes name pools too; with routes, its own upstream (the default) is optional.
      const pools: Array<[string, ConfigPath]> = entries(l.sni).flatMap(([j, r]) => {
        const name = str(r.upstream);
        return name === undefined ? [] : [[name, ['listeners', i, 'sni', j, 'upstream']] as [string, ConfigPath]];
      });
      if (upstream !== undefined) pools.unshift([upstream, ['listeners', i, 'upstream']]);
      if (upstream === undefined && (protocol === 'tcp' || pools.length === 0)) {
        issues.push({
          path: ['listeners', i],
          message: `a ${protocol} listener needs an upstream (the pool its connections go to)`,
        });
        continue;
      }
      for (const [name, path] of pools) {
        const target = upstreamByName.get(name);
        if (target === undefined) {
          issues.push({ path, message: `unknown upstream "${name}"${didYouMean(name, upstreamNames)}` });
        } else if (targetKind(target) === 'url' || targetKind(target) === 'mixed') {
          issues.push({
            path,
            message: `upstream "${name}" must have address targets (host:port) for a ${protocol} listener`,
          });
        }
      }
    } else if ((protocol === 'http' || protocol === 'https') && upstream !== undefined) {
      issues.push({
        path: ['listeners', i, 'upstream'],
        message: `an ${protocol} listener takes no upstream: routes choose upstreams`,
      });
    }
  }

  for (const [i, r] of routes) {
    const upstream = str(r.upstream);
    if (upstream !== undefined) {
      const target = upstreamByName.get(upstream);
      if (target === undefined) {
        issues.push({
          path: ['routes', i, 'upstream'],
          message: `unknown upstream "${upstream}"${didYouMean(upstream, upstreamNames)}`,
        });
      } else if (targetKind(target) === 'address' || targetKind(target) === 'mixed') {
        issues.push({
          path: ['routes', i, 'upstream'],
          message: `upstream "${upstream}" must have url targets (http://host:port) for a route`,
        });
      }
    }
    if (Array.isArray(r.policies)) {
      r.policies.forEach((p, j) => {
        if (typeof p === 'string' && !policyNames.includes(p)) {
          issues.push({
            path: ['routes', i, 'policies', j],
            message: `unknown policy "${p}"${didYouMean(p, policyNames)}`,
          });
        }
      });
    }
    const match = isObj(r.match) ? r.match : undefined;
    const matchPath = match === undefined ? undefined : str(match.path);
    if (matchPath !== undefined) {
      const problem = routePathProblem(matchPath);
      if (problem !== undefined) issues.push({ path: ['routes', i, 'match', 'path'], message: problem });
    }
    // The router refuses these when it is built; caught here they get a line and a path instead.
    const host = match?.host;
    const hosts = typeof host === 'string' ? [[host, []]] : Array.isArray(host) ? host.map((h, j) => [h, [j]]) : [];
    for (const [h, at] of hosts as Array<[unknown, number[]]>) {
      const problem = typeof h === 'string' ? validateRouteHost(h) : undefined;
      if (problem !== undefined) issues.push({ path: ['routes', i, 'match', 'host', ...at], message: problem });
    }
    const rewrite = isObj(r.rewrite) ? r.rewrite : undefined;
    const regex = rewrite !== undefined && isObj(rewrite.regex) ? rewrite.regex : undefined;
    const pattern = regex === undefined ? undefined : str(regex.pattern);
    if (pattern !== undefined) {
      try {
        new RegExp(pattern);
      } catch (err) {
        issues.push({
          path: ['routes', i, 'rewrite', 'regex', 'pattern'],
          message: `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`,
        });
      }
    }
  }
  return issues;
}
