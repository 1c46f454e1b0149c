/**
 * @module The `cors` policy: answers CORS preflights itself and adds CORS headers to actual responses,
 * following the Fetch standard's CORS protocol (https://fetch.spec.whatwg.org/#http-cors-protocol).
 *
 * Preflight (OPTIONS with Origin and Access-Control-Request-Method): answered with 204 and the CORS headers
 * without reaching the upstream (a `respond` verdict). A preflight this policy would not allow (origin,
 * method or a requested header not listed) gets 403 `GW_CORS_REJECTED`, not a header-less 204: the browser
 * fails either way, but a 403 carries a code to the access log and the developer tools; and it is the only
 * way to enforce `methods`, because browsers let safelisted methods (GET, HEAD, POST) through whatever
 * Access-Control-Allow-Methods says.
 *
 * Actual requests always continue (CORS is enforced by the browser, not by refusing requests). From an
 * allowed origin they get Access-Control-Allow-Origin (+ Credentials, Expose-Headers), also on local replies
 * of later policies (through `replyHeaders`, so a page can read a 401). The upstream's own
 * Access-Control-* response headers are replaced: this policy is the single authority. `Vary: Origin` is
 * added to every response whose CORS headers depend on the origin, even without an Origin header, so a
 * cache never serves one origin's answer to another.
 */
import type { ErrorCode, LocalReply } from '../../errors.ts';
import { CONTINUE, type Exchange, type Policy, type PolicyDeps, type Verdict } from '../types.ts';
import type { CorsOptions } from './options.ts';
import { compileOrigins, type OriginMatcher } from './origins.ts';

export const GW_CORS_REJECTED: ErrorCode = 'GW_CORS_REJECTED';

const ALLOW_ORIGIN = 'access-control-allow-origin';
const ALLOW_CREDENTIALS = 'access-control-allow-credentials';
const EXPOSE_HEADERS = 'access-control-expose-headers';
const PREFLIGHT_VARY = 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers';
const VARY_HAS_ORIGIN = /(?:^|,)\s*(?:origin|\*)\s*(?:,|$)/i;

interface CorsPlan {
  readonly origins: OriginMatcher;
  readonly credentials: boolean;
  /** `Access-Control-Allow-Origin: *` is sent (any origin, no credentials): nothing depends on Origin. */
  readonly star: boolean;
  readonly anyMethod: boolean;
  readonly methods: ReadonlySet<string>;
  readonly methodsValue: string;
  /** undefined: reflect what the preflight asks for. */
  readonly headers: ReadonlySet<string> | undefined;
  readonly headersValue: string;
  readonly exposed: string;
  readonly maxAge: string | undefined;
}

function rejected(details: string): Verdict {
  const reply: LocalReply = Object.freeze({ status: 403, code: GW_CORS_REJECTED, details });
  return Object.freeze({ kind: 'reply', reply });
}

// Built once: a refused preflight allocates nothing.
const ORIGIN_REJECTED = rejected('cors_origin_not_allowed');
const METHOD_REJECTED = rejected('cors_method_not_allowed');
const HEADER_REJECTED = rejected('cors_header_not_allowed');

export function createCors(name: string, options: Readonly<CorsOptions>, deps: PolicyDeps): Policy {
  const listed = compileOrigins(options.origins);
  // `*` with credentials echoes the origin; `null` (sandboxed frames, file: pages, redirects) only when listed.
  const origins: OriginMatcher =
    listed.any && options.credentials && !options.origins.includes('null')
      ? { any: true, matches: (origin) => origin !== 'null' && listed.matches(origin) }
      : listed;
  if (origins.any && options.credentials) {
    deps.log.warn({ policy: name }, 'cors allows credentials from any origin: every site can act as the user');
  }
  const anyHeader = options.allowedHeaders === undefined || options.allowedHeaders.includes('*');
  const headers = anyHeader ? undefined : options.allowedHeaders!.map((h) => h.toLowerCase());
  const plan: CorsPlan = {
    origins,
    credentials: options.credentials,
    star: origins.any && !options.credentials,
    anyMethod: options.methods.includes('*'),
    methods: new Set(options.methods),
    methodsValue: options.methods.join(', '),
    headers: headers === undefined ? undefined : new Set(headers),
    headersValue: headers === undefined ? '' : headers.join(', '),
    exposed: options.exposedHeaders.join(', '),
    maxAge: options.maxAge === undefined ? undefined : String(options.maxAge),
  };
  return {
    name,
    type: 'cors',
    onRequest: (ex) => onRequest(ex, plan),
    onResponse: (ex) => onResponse(ex, plan),
  };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function onRequest(ex: Exchange, plan: CorsPlan): Verdict {
  const headers = ex.request.headers;
  const origin = headerValue(headers.origin);
  if (origin === undefined) return CONTINUE;
  const allowed = plan.origins.matches(origin);
  const requestedMethod = headerValue(headers['access-control-request-method']);
  if (ex.request.method === 'OPTIONS' && requestedMethod !== undefined) {
    return preflight(origin, allowed, requestedMethod, headerValue(headers['access-control-request-headers']), plan);
  }
  if (allowed) {
    const reply = ex.replyHeaders;
    reply[ALLOW_ORIGIN] = plan.star ? '*' : origin;
    if (plan.credentials) reply[ALLOW_CREDENTIALS] = 'true';
    if (plan.exposed !== '') reply[EXPOSE_HEADERS] = plan.exposed;
  }
  return CONTINUE;
}

function preflight(
  origin: string,
  allowed: boolean,
  method: string,
  requestedHeaders: string | undefined,
  plan: CorsPlan,
): Verdict {
  if (!allowed) return ORIGIN_REJECTED;
  if (!plan.anyMethod && !plan.methods.has(method)) return METHOD_REJECTED;
  const asked = requestedHeaders?.trim() ?? '';
  if (plan.headers !== undefined && asked !== '') {
    for (const item of asked.split(',')) {
      const header = item.trim().toLowerCase();
      if (header !== '' && !plan.headers.has(header)) return HEADER_REJECTED;
    }
  }
  const out: Record<string, string> = {
    [ALLOW_ORIGIN]: plan.star ? '*' : origin,
    // `*` is literal with credentials, so echo the requested method then.
    'access-control-allow-methods': plan.anyMethod ? (plan.credentials ? method : '*') : plan.methodsValue,
    vary: PREFLIGHT_VARY,
  };
  if (plan.credentials) out[ALLOW_CREDENTIALS] = 'true';
  // Reflect rather than `*`: `*` never covers Authorization and is literal with credentials.
  const allowHeaders = plan.headers === undefined ? asked : plan.headersValue;
  if (allowHeaders !== '') out['access-control-allow-headers'] = allowHeaders;
  if (plan.maxAge !== undefined) out['access-control-max-age'] = plan.maxAge;
  return { kind: 'respond', status: 204, headers: out };
}

function onResponse(ex: Exchange, plan: CorsPlan): void {
  const response = ex.response;
  if (response === undefined) return;
  const headers = response.headers;
  delete headers[ALLOW_ORIGIN];
  delete headers[ALLOW_CREDENTIALS];
  delete headers[EXPOSE_HEADERS];
  if (!plan.star) addVaryOrigin(headers);
  const origin = headerValue(ex.request.headers.origin);
  if (origin === undefined || !plan.origins.matches(origin)) return;
  headers[ALLOW_ORIGIN] = plan.star ? '*' : origin;
  if (plan.credentials) headers[ALLOW_CREDENTIALS] = 'true';
  if (plan.exposed !== '') headers[EXPOSE_HEADERS] = plan.exposed;
}

function addVaryOrigin(headers: Record<string, string | string[] | number | undefined>): void {
  const vary = headers.vary;
  if (vary === undefined || vary === '') {
    headers.vary = 'Origin';
    return;
  }
  const text = Array.isArray(vary) ? vary.join(', ') : String(vary);
  if (!VARY_HAS_ORIGIN.test(text)) headers.vary = `${text}, Origin`;
}
