/**
 * @module The registry of policy types: YAML `type` → factory. A map, not an if-chain; an unknown type is a
 * config error (with a did-you-mean), never a silent no-op.
 *
 * To add a policy type, add its folder's module to `FACTORY_MODULES`.
 */

import { createRequire } from 'node:module';
import type { Config } from '../config/schema.ts';
import type { Policy, PolicyDeps, PolicyFactory } from './types.ts';

// biome-ignore lint/suspicious/noExplicitAny: each factory has its own option type
export type FactoryMap = Readonly<Record<string, PolicyFactory<any>>>;

const require = createRequire(import.meta.url);

/**
 * Each policy type's module. A module is loaded the first time a config names its type, so a plain reverse
 * proxy never pays for JWT, JSON Schema or Redis code.
 */
const FACTORY_MODULES: Readonly<Record<string, string>> = {
  'api-key': './api-key/index.ts',
  'basic-auth': './basic-auth/index.ts',
  'jwt-auth': './jwt-auth/index.ts',
  'oauth2-introspection': './oauth2-introspection/index.ts',
  'mtls-auth': './mtls-auth/index.ts',
  acl: './acl/index.ts',
  claims: './acl/claims.ts',
  'rate-limit': './rate-limit/index.ts',
  quota: './quota/index.ts',
  cors: './cors/index.ts',
  transform: './transform/index.ts',
  validate: './validate/index.ts',
};

const loaded = new Map<string, PolicyFactory<unknown>>();

/** The factory of a built-in policy type, or undefined for an unknown type. */
export function factoryFor(type: string): PolicyFactory<unknown> | undefined {
  const path = FACTORY_MODULES[type];
  if (path === undefined) return undefined;
  let f = loaded.get(type);
  if (f === undefined) {
    f = (require(path) as { factory: PolicyFactory<unknown> }).factory;
    loaded.set(type, f);
  }
  return f;
}

/** Every built-in factory by type (loads them all: for tests and tools). */
export function policyFactories(): FactoryMap {
  return Object.freeze(Object.fromEntries(Object.keys(FACTORY_MODULES).map((t) => [t, factoryFor(t)!])));
}

/** A lookup over the built-in types (lazily loaded) or over an explicit map (tests). */
function lookup(known: FactoryMap | undefined): {
  types: string[];
  get(type: string): PolicyFactory<unknown> | undefined;
} {
  if (known === undefined) return { types: Object.keys(FACTORY_MODULES), get: factoryFor };
  return { types: Object.keys(known), get: (t) => known[t] };
}

/** A new map with `extra` added (tests, or the lead wiring other engineers' factories); never mutates. */
export function registerFactories(base: FactoryMap, ...extra: PolicyFactory<unknown>[]): FactoryMap {
  const out: Record<string, PolicyFactory<unknown>> = { ...base };
  for (const f of extra) out[f.type] = f;
  return Object.freeze(out);
}

export interface PolicyIssue {
  readonly path: (string | number)[];
  readonly message: string;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/** The closest known name, when it is close enough to be a typo. */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const d = distance(name.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

function segments(path: string): (string | number)[] {
  if (path === '') return [];
  return path.split('.').map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function optionsOf(entry: { type: string }): Record<string, unknown> {
  const { type: _type, ...rest } = entry as Record<string, unknown>;
  return rest;
}

/** Every problem in `config.policies` and in routes' references to them, with YAML paths. */
export function validatePolicies(config: Config, known?: FactoryMap): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const registry = lookup(known);
  const types = registry.types;
  for (const [name, entry] of Object.entries(config.policies)) {
    const factory = registry.get(entry.type);
    if (factory === undefined) {
      const guess = didYouMean(entry.type, types);
      const hint = guess === undefined ? `known types: ${types.join(', ')}` : `did you mean "${guess}"?`;
      issues.push({ path: ['policies', name, 'type'], message: `unknown policy type "${entry.type}"; ${hint}` });
      continue;
    }
    const parsed = factory.parse(optionsOf(entry));
    if (!parsed.ok) {
      for (const i of parsed.issues) issues.push({ path: ['policies', name, ...segments(i.path)], message: i.message });
    }
  }
  const names = Object.keys(config.policies);
  config.routes.forEach((route, r) => {
    route.policies.forEach((p, j) => {
      if (config.policies[p] !== undefined) return;
      const guess = didYouMean(p, names);
      const hint = guess === undefined ? '' : `; did you mean "${guess}"?`;
      issues.push({ path: ['routes', r, 'policies', j], message: `no policy named "${p}"${hint}` });
    });
  });
  return issues;
}

/** Builds every named policy; expects a config that passed validatePolicies. */
export function buildPolicies(config: Config, deps: PolicyDeps, known?: FactoryMap): Map<string, Policy> {
  const registry = lookup(known);
  const built = new Map<string, Policy>();
  try {
    for (const [name, entry] of Object.entries(config.policies)) {
      const factory = registry.get(entry.type);
      if (factory === undefined) throw new Error(`unknown policy type "${entry.type}" (validate first)`);
      const parsed = factory.parse(optionsOf(entry));
      if (!parsed.ok) throw new Error(`policy "${name}" is invalid (validate first)`);
      built.set(name, factory.create(name, Object.freeze(parsed.config), deps));
    }
  } catch (err) {
    void closePolicies(built);
    throw err;
  }
  return built;
}

/** The route's policies in order (names already validated). */
export function routePolicies(names: readonly string[], built: ReadonlyMap<string, Policy>): Policy[] {
  return names.map((n) => built.get(n)!);
}

/** Closes every policy; failures are logged by the caller through the returned reasons. */
export async function closePolicies(built: ReadonlyMap<string, Policy>): Promise<unknown[]> {
  const results = await Promise.allSettled([...built.values()].map((p) => p.close?.()));
  return results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
}
