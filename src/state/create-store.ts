/** @module Builds the Store a config's `state` section asks for. */

import { createRequire } from 'node:module';
import { createMemoryStore } from './memory.ts';
import type { createRedisStore as CreateRedisStore } from './redis.ts';
import type { StateConfig } from './schema.ts';
import type { Store } from './types.ts';

export interface CreateStoreDeps {
  readonly log?: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

/** A new store (Redis connects in the background). The caller owns it and calls `close()`. */
export function createStore(config: StateConfig, deps: CreateStoreDeps = {}): Store {
  if (config.store === 'memory') return createMemoryStore();
  // Loaded only when a config asks for Redis: ioredis costs memory a single instance does not need.
  const { createRedisStore } = createRequire(import.meta.url)('./redis.ts') as {
    createRedisStore: typeof CreateRedisStore;
  };
  return createRedisStore({
    url: config.url,
    sentinels: config.sentinels,
    name: config.name,
    cluster: config.cluster,
    keyPrefix: config.keyPrefix,
    timeouts: config.timeouts,
    log: deps.log,
  });
}
