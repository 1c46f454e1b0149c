/**
 * @module The catalogue of error codes Portico sends to clients and writes to logs.
 *
 * Every local reply (a response Portico makes itself instead of forwarding one) carries one of these codes
 * in its problem+json body. `docs/errors.md` documents each code; test/unit/errors.test.ts keeps both in sync.
 * Codes are stable: clients may branch on them. Titles are short and never contain request data.
 */

export const ERROR_CODES = {
  // --- request parsing and limits (proxy) ---
  GW_BAD_REQUEST: { status: 400, title: 'Bad request' },
  GW_BAD_PATH: { status: 400, title: 'Bad request path' },
  GW_HEADERS_TOO_LARGE: { status: 431, title: 'Request header fields too large' },
  GW_URI_TOO_LONG: { status: 414, title: 'Request target too long' },
  GW_BODY_TOO_LARGE: { status: 413, title: 'Content too large' },
  GW_REQUEST_TIMEOUT: { status: 408, title: 'Request timeout' },
  GW_EXPECTATION_FAILED: { status: 417, title: 'Expectation failed' },
  GW_WEBSOCKET_BAD_HANDSHAKE: { status: 400, title: 'Invalid WebSocket handshake' },
  GW_WEBSOCKET_VERSION_UNSUPPORTED: { status: 426, title: 'Unsupported WebSocket version' },
  GW_NOT_IMPLEMENTED: { status: 501, title: 'Not implemented' },
  GW_VERSION_NOT_SUPPORTED: { status: 505, title: 'HTTP version not supported' },
  // --- routing ---
  GW_ROUTE_NOT_FOUND: { status: 404, title: 'No route matches this request' },
  GW_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  GW_ADDRESS_DENIED: { status: 403, title: 'Client address not allowed' },
  GW_TOO_MANY_CONNECTIONS: { status: 429, title: 'Too many connections from this client' },
  // --- upstream (forwarder and balancer) ---
  GW_UPSTREAM_CONNECT_FAILED: { status: 502, title: 'Upstream connection failed' },
  GW_UPSTREAM_RESET: { status: 502, title: 'Upstream closed the connection' },
  GW_UPSTREAM_BAD_RESPONSE: { status: 502, title: 'Upstream sent an invalid response' },
  GW_UPSTREAM_CONNECT_TIMEOUT: { status: 504, title: 'Upstream connection timed out' },
  GW_UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream response timed out' },
  GW_UPSTREAM_UNAVAILABLE: { status: 503, title: 'No healthy upstream target' },
  GW_UPSTREAM_OVERLOADED: { status: 503, title: 'Upstream circuit breaker open' },
  // --- response cache ---
  GW_CACHE_ONLY_IF_CACHED: { status: 504, title: 'No stored response (only-if-cached)' },
  GW_CACHE_REVALIDATION_FAILED: { status: 504, title: 'Stored response must be revalidated; upstream unreachable' },
  // --- gateway: authentication and authorization ---
  GW_AUTH_MISSING: { status: 401, title: 'Credentials required' },
  GW_AUTH_INVALID: { status: 401, title: 'Invalid credentials' },
  GW_AUTH_UNAVAILABLE: { status: 503, title: 'Credentials cannot be verified right now' },
  GW_FORBIDDEN: { status: 403, title: 'Forbidden' },
  // --- gateway: rate limits and quotas ---
  GW_RATE_LIMITED: { status: 429, title: 'Too many requests' },
  GW_QUOTA_EXCEEDED: { status: 429, title: 'Quota exceeded' },
  GW_STATE_UNAVAILABLE: { status: 503, title: 'Shared state unavailable' },
  // --- gateway: shaping ---
  GW_VALIDATION_FAILED: { status: 400, title: 'Request validation failed' },
  GW_CORS_REJECTED: { status: 403, title: 'CORS request not allowed' },
  GW_TRANSFORM_FAILED: { status: 400, title: 'Request body cannot be transformed' },
  GW_UPSTREAM_BODY_TOO_LARGE: { status: 502, title: 'Upstream response too large to process' },
  // --- server ---
  GW_SHUTTING_DOWN: { status: 503, title: 'Server is shutting down' },
  GW_INTERNAL: { status: 500, title: 'Internal error' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** A response Portico makes itself. `details` goes to the access log, never to the client. */
export interface LocalReply {
  readonly status: number;
  readonly code: ErrorCode;
  readonly details: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Builds a local reply with the catalogue's status for `code`. */
export function localReply(code: ErrorCode, details: string, headers?: Record<string, string>): LocalReply {
  return headers === undefined
    ? { status: ERROR_CODES[code].status, code, details }
    : { status: ERROR_CODES[code].status, code, details, headers };
}

/** A configuration problem at one place in one file. Collected, never thrown one at a time to the user. */
export interface ConfigIssue {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  /** YAML path such as `routes[2].upstream`. */
  readonly path: string;
  readonly message: string;
}

/** Thrown by the loader with every issue found; `message` lists them one a line. */
export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(issues.map(formatConfigIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}:${issue.column}` : issue.file;
  return issue.path ? `${where} ${issue.path}: ${issue.message}` : `${where} ${issue.message}`;
}
