/**
 * @module The cache's place in the request path: after the route's policies, before the forwarder.
 *
 * A fresh (or usable stale) entry is answered here without touching the upstream; a miss or a revalidation
 * hands the forwarder a ticket it completes with the upstream's answer (see cache/cache.ts for the contract).
 */

import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { Dispatcher } from 'undici';
import { type LookupResult, PRECONDITION_FIELDS, type RouteCache, type Ticket } from './cache/cache.ts';
import type { CacheScheme } from './cache/key.ts';
import type { UpstreamRuntime } from './types.ts';
import type { UpstreamDispatcher } from './upstream-clients.ts';

const require = createRequire(import.meta.url);
type RequestFn = (this: UpstreamDispatcher, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
let requestFn: RequestFn | undefined;

/** undici's promise API, loaded on first use (the data path itself only dispatches). */
function undiciRequest(): RequestFn {
  requestFn ??= require('undici/lib/api/api-request.js') as RequestFn;
  return requestFn;
}

/** Looks the request up; the client's headers are copied so the forwarder may edit its own. */
export function lookup(
  cache: RouteCache,
  method: string,
  scheme: CacheScheme,
  host: string | undefined,
  url: string,
  headers: IncomingHttpHeaders,
): Promise<LookupResult> {
  return cache.lookup({ method, scheme, host: host ?? '', url, headers: { ...headers } });
}

/**
 * stale-while-revalidate: refreshes the entry in the background with one conditional GET to a target the
 * balancer picks. The client already has its (stale) answer; failures only end the ticket.
 */
export function revalidateInBackground(
  upstream: UpstreamRuntime,
  path: string,
  headers: IncomingHttpHeaders,
  ticket: Ticket,
): void {
  const target = upstream.pool.pick({});
  if (target === undefined) {
    ticket.onError();
    return;
  }
  const end = upstream.pool.begin(target);
  const sent: IncomingHttpHeaders = { ...headers };
  // A plain conditional GET with the stored validators: the client's own preconditions and Range stay out.
  for (const name of PRECONDITION_FIELDS) delete sent[name];
  Object.assign(sent, ticket.upstreamHeaders);
  sent.host = upstream.hostHeader(target);
  delete sent['content-length'];
  undiciRequest()
    .call(upstream.dispatcher(target), { method: 'GET', path, headers: sent })
    .then(
      async (res) => {
        end({ kind: 'response', status: res.statusCode });
        await ticket.complete(res.statusCode, res.headers as Record<string, string | string[]>, res.body);
      },
      () => {
        end({ kind: 'reset' });
        ticket.onError();
      },
    )
    .catch(() => ticket.onError());
}
