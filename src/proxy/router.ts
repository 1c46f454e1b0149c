/**
 * @module The HTTP router: picks the one route for a request from its host, path, method and headers.
 *
 * Precedence is a total order fixed at build time (docs/routing.md): host first (exact name, then wildcards
 * with the longest suffix first, then routes with no host), then path (exact, then `:param` patterns with more
 * literal segments first, then `/*` prefixes with the longest prefix first), then routes that list methods,
 * then routes with more header conditions, then file order. The first route in that order whose every
 * condition holds wins.
 *
 * Everything is compiled once per config: routes are grouped by host, exact paths sit in a Map, patterns are
 * pre-split segment lists walked without allocation, and matches of routes without params are preallocated
 * (params of the others are cut out of the path only when read). The groups to try for a Host value are
 * cached in a bounded map. No regex runs per request. Paths given to `match` must already be normalised
 * (`normalize-path.ts`).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RouteConfig } from '../config/schema.ts';
import { compilePathPattern, matchPathPattern, type PathPattern, pathParams } from './path-pattern.ts';

/** The route chosen for a request. Matches of routes without params are shared and frozen: do not mutate. */
export interface RouteMatch {
  readonly route: RouteConfig;
  /** Position of the route in the config file's `routes` list. */
  readonly index: number;
  /** Values of `:name` segments, as they appear in the normalised path (escapes of reserved bytes kept). */
  readonly params: Readonly<Record<string, string>>;
}

export interface Router {
  /**
   * Finds the route for a request, or undefined (→ 404 GW_ROUTE_NOT_FOUND).
   * @param method upper-case request method
   * @param host the Host header or `:authority` as received (port, case and a trailing dot are ignored)
   * @param path the normalised path, without query
   */
  match(method: string, host: string | undefined, path: string, headers: IncomingHttpHeaders): RouteMatch | undefined;
}

interface Entry {
  readonly index: number;
  readonly route: RouteConfig;
  readonly pattern: PathPattern;
  readonly methods: ReadonlySet<string> | undefined;
  readonly headerNames: readonly string[];
  readonly headerValues: readonly string[];
  /** Preallocated result for routes without params. */
  readonly result: RouteMatch | undefined;
}

interface Group {
  readonly exact: Map<string, Entry[]>;
  /** Param and prefix patterns, most specific first. */
  readonly patterns: Entry[];
}

const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({});

/**
 * Checks a `match.host` entry: `example.com`, `*.example.com` or `*` (any host).
 * @returns an error message, or undefined when valid.
 */
export function validateRouteHost(host: string): string | undefined {
  if (host === '*') return undefined;
  const name = host.startsWith('*.') ? host.slice(2) : host;
  if (
    !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?)$/.test(
      name,
    )
  ) {
    return `invalid host "${host}" (use example.com or *.example.com)`;
  }
  return undefined;
}

/**
 * Checks a `match.path` pattern for config validation (see `path-pattern.ts` for the rules).
 * @returns an error message, or undefined when valid.
 */
export function validateRoutePath(path: string): string | undefined {
  const pattern = compilePathPattern(path);
  return typeof pattern === 'string' ? pattern : undefined;
}

/** Lower-cases a host and strips its port and trailing dot, allocating only when something changes. */
export function normalizeHost(host: string): string {
  let end = host.length;
  if (host.charCodeAt(0) === 0x5b) {
    const close = host.indexOf(']');
    if (close !== -1) end = close + 1;
  } else {
    const colon = host.indexOf(':');
    if (colon !== -1) end = colon;
  }
  if (end > 0 && host.charCodeAt(end - 1) === 0x2e) end--;
  return (end === host.length ? host : host.slice(0, end)).toLowerCase();
}

/**
 * Compiles the routes of one config generation. Throws an Error naming the route on an invalid host or path
 * (config validation should have reported it first).
 *
 * @example
 * const router = createRouter(config.routes);
 * const m = router.match('GET', req.headers.host, '/users/42', req.headers); // m.params.id === '42'
 */
export function createRouter(routes: readonly RouteConfig[]): Router {
  const byHost = new Map<string, Entry[]>();
  const byWildcard = new Map<string, Entry[]>();
  const anyHost: Entry[] = [];

  routes.forEach((route, index) => {
    const pattern = compilePathPattern(route.match.path);
    if (typeof pattern === 'string') throw new Error(`routes[${index}] (${route.name}): ${pattern}`);
    const entry = compileEntry(route, index, pattern);
    const hosts = route.match.host === undefined ? [] : [route.match.host].flat();
    if (hosts.length === 0 || hosts.includes('*')) {
      anyHost.push(entry);
      return;
    }
    for (const host of hosts) {
      const error = validateRouteHost(host);
      if (error !== undefined) throw new Error(`routes[${index}] (${route.name}): ${error}`);
    }
    for (const name of new Set(hosts.map(normalizeHost))) {
      if (name.startsWith('*.')) pushTo(byWildcard, name.slice(1), entry);
      else pushTo(byHost, name, entry);
    }
  });

  const exactHosts = new Map<string, Group>();
  for (const [host, entries] of byHost) exactHosts.set(host, buildGroup(entries));
  // Longest suffix first: `*.a.example.com` beats `*.example.com`.
  const wildcards = [...byWildcard.keys()]
    .sort((a, b) => b.length - a.length)
    .map((suffix) => ({ suffix, group: buildGroup(byWildcard.get(suffix)!) }));
  return new HostRouter(exactHosts, wildcards, anyHost.length > 0 ? buildGroup(anyHost) : undefined);
}

/** Maximum number of distinct Host values whose group lists are remembered (client-supplied, so bounded). */
const HOST_CACHE_SIZE = 1024;

class HostRouter implements Router {
  readonly #exactHosts: ReadonlyMap<string, Group>;
  readonly #wildcards: readonly { readonly suffix: string; readonly group: Group }[];
  readonly #anyGroups: readonly Group[];
  readonly #hasHostRoutes: boolean;
  /** Raw Host value → the groups to try, in precedence order. */
  readonly #cache = new Map<string, readonly Group[]>();

  constructor(
    exactHosts: ReadonlyMap<string, Group>,
    wildcards: readonly { readonly suffix: string; readonly group: Group }[],
    anyGroup: Group | undefined,
  ) {
    this.#exactHosts = exactHosts;
    this.#wildcards = wildcards;
    this.#anyGroups = anyGroup === undefined ? [] : [anyGroup];
    this.#hasHostRoutes = exactHosts.size > 0 || wildcards.length > 0;
  }

  match(method: string, host: string | undefined, path: string, headers: IncomingHttpHeaders): RouteMatch | undefined {
    const groups = this.#hasHostRoutes && host !== undefined ? this.#groupsFor(host) : this.#anyGroups;
    for (let i = 0; i < groups.length; i++) {
      const found = matchGroup(groups[i]!, method, path, headers);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  #groupsFor(host: string): readonly Group[] {
    const cached = this.#cache.get(host);
    if (cached !== undefined) return cached;
    const name = normalizeHost(host);
    const groups: Group[] = [];
    const exact = this.#exactHosts.get(name);
    if (exact !== undefined) groups.push(exact);
    for (const { suffix, group } of this.#wildcards) {
      // `.example.com` needs at least one label before it, so `example.com` itself does not match.
      if (name.length > suffix.length && name.endsWith(suffix)) groups.push(group);
    }
    groups.push(...this.#anyGroups);
    if (this.#cache.size >= HOST_CACHE_SIZE) this.#cache.clear();
    this.#cache.set(host, groups);
    return groups;
  }
}

function pushTo(map: Map<string, Entry[]>, key: string, entry: Entry): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [entry]);
  else list.push(entry);
}

function compileEntry(route: RouteConfig, index: number, pattern: PathPattern): Entry {
  let methods: Set<string> | undefined;
  if (route.match.methods !== undefined) {
    methods = new Set(route.match.methods);
    if (methods.has('GET')) methods.add('HEAD'); // RFC 9110 §9.3.2: HEAD is GET without a body
  }
  const headers = Object.entries(route.match.headers ?? {});
  const result = pattern.paramCount === 0 ? Object.freeze({ route, index, params: EMPTY_PARAMS }) : undefined;
  return {
    index,
    route,
    pattern,
    methods,
    headerNames: headers.map(([name]) => name.toLowerCase()),
    headerValues: headers.map(([, value]) => value),
    result,
  };
}

function buildGroup(entries: Entry[]): Group {
  const sorted = [...entries].sort(compareEntries);
  const exact = new Map<string, Entry[]>();
  const patterns: Entry[] = [];
  for (const entry of sorted) {
    if (entry.pattern.kind === 'exact') pushTo(exact, entry.pattern.text, entry);
    else patterns.push(entry);
  }
  return { exact, patterns };
}

const KIND_RANK = { exact: 0, param: 1, prefix: 2 } as const;

/** The precedence order: negative when `a` is more specific than `b`. */
function compareEntries(a: Entry, b: Entry): number {
  const pa = a.pattern;
  const pb = b.pattern;
  return (
    KIND_RANK[pa.kind] - KIND_RANK[pb.kind] ||
    pb.segments.length - pa.segments.length || // for prefixes: the longest prefix first
    pb.literalCount - pa.literalCount ||
    compareShape(pa, pb) ||
    (a.methods === undefined ? 1 : 0) - (b.methods === undefined ? 1 : 0) ||
    b.headerNames.length - a.headerNames.length ||
    a.index - b.index
  );
}

/** Leftmost literal wins: `/a/:x` before `/:x/b`. */
function compareShape(a: PathPattern, b: PathPattern): number {
  const n = Math.min(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const la = a.paramNames[i] === undefined ? 0 : 1;
    const lb = b.paramNames[i] === undefined ? 0 : 1;
    if (la !== lb) return la - lb;
  }
  return 0;
}

function conditionsHold(entry: Entry, method: string, headers: IncomingHttpHeaders): boolean {
  if (entry.methods !== undefined && !entry.methods.has(method)) return false;
  const names = entry.headerNames;
  for (let i = 0; i < names.length; i++) {
    const actual = headers[names[i]!];
    const expected = entry.headerValues[i]!;
    if (actual !== expected && !(Array.isArray(actual) && actual.includes(expected))) return false;
  }
  return true;
}

/** A match of a route with params: the values are cut out of the path only when someone reads them. */
class ParamMatch implements RouteMatch {
  readonly route: RouteConfig;
  readonly index: number;
  readonly #pattern: PathPattern;
  readonly #path: string;
  #params: Readonly<Record<string, string>> | undefined = undefined;

  constructor(entry: Entry, path: string) {
    this.route = entry.route;
    this.index = entry.index;
    this.#pattern = entry.pattern;
    this.#path = path;
  }

  get params(): Readonly<Record<string, string>> {
    this.#params ??= pathParams(this.#pattern, this.#path);
    return this.#params;
  }
}

function matchGroup(group: Group, method: string, path: string, headers: IncomingHttpHeaders): RouteMatch | undefined {
  const exact = group.exact.get(path);
  if (exact !== undefined) {
    for (let i = 0; i < exact.length; i++) {
      const entry = exact[i]!;
      if (conditionsHold(entry, method, headers)) return entry.result;
    }
  }
  const patterns = group.patterns;
  for (let i = 0; i < patterns.length; i++) {
    const entry = patterns[i]!;
    if (matchPathPattern(entry.pattern, path) && conditionsHold(entry, method, headers)) {
      return entry.result ?? new ParamMatch(entry, path);
    }
  }
  return undefined;
}
