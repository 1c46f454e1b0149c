/**
 * @module Route actions: routes that answer themselves with a fixed response or a redirect, instead of
 * proxying (`respond:` and `redirect:` in the config).
 */
import type { ServerResponse } from 'node:http';
import type { RouteConfig } from '../config/schema.ts';

export type RouteAction =
  | {
      readonly kind: 'respond';
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly body: Buffer;
    }
  | { readonly kind: 'redirect'; readonly status: number; readonly to: string; readonly templated: boolean };

export function compileRouteAction(route: RouteConfig): RouteAction | undefined {
  if (route.respond !== undefined) {
    const r = route.respond;
    const headers: Record<string, string> = { 'content-type': r.contentType };
    for (const [name, value] of Object.entries(r.headers)) headers[name.toLowerCase()] = value;
    return { kind: 'respond', status: r.status, headers, body: Buffer.from(r.body) };
  }
  if (route.redirect !== undefined) {
    const to = route.redirect.to;
    return {
      kind: 'redirect',
      status: route.redirect.status,
      to,
      templated: to.includes('{path}') || to.includes('{query}'),
    };
  }
  return undefined;
}

/** Answers `res` with the action. `path` is normalised; `query` is raw (without `?`). */
export function answerWithAction(
  res: ServerResponse,
  action: RouteAction,
  path: string,
  query: string,
  extraHeaders: Readonly<Record<string, string>>,
): number {
  if (action.kind === 'respond') {
    // RFC 9110 §8.6: a 204 has no Content-Length, and a 304 has none of its own (it would describe a 200).
    if (action.status === 204 || action.status === 304) {
      res.writeHead(action.status, { ...action.headers, ...extraHeaders });
      res.end();
      return action.status;
    }
    res.writeHead(action.status, { ...action.headers, ...extraHeaders, 'content-length': action.body.length });
    res.end(res.req?.method === 'HEAD' ? undefined : action.body);
    return action.status;
  }
  let location = action.to;
  if (action.templated) {
    location = location.replaceAll('{path}', path).replaceAll('{query}', query === '' ? '' : `?${query}`);
  }
  res.writeHead(action.status, { location, ...extraHeaders, 'content-length': 0 });
  res.end();
  return action.status;
}
