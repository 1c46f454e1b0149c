/**
 * @module The `transform` policy: rewrites the request (body → path → headers → query) before it is
 * forwarded and the response (body → headers → status) before it reaches the client. Templates in later
 * steps see the changes of earlier ones.
 *
 * Bodies are buffered only when a `body` section exists. A request body that is not JSON is refused with
 * 400 `GW_TRANSFORM_FAILED`: body rules may enforce something (drop a field the client must not set), so a
 * mislabelled or unparseable body must not slip past them. An empty body is left alone. A response body
 * that is not JSON (or is compressed) is passed through unchanged; to get plain JSON from upstream, the
 * request's `accept-encoding` is removed when response body rules exist (Portico compresses to the client).
 */
import type { ErrorCode, LocalReply } from '../../errors.ts';
import { replyVerdict } from '../replies.ts';
import { CONTINUE, type Exchange, type Policy, type PolicyDeps, type Verdict } from '../types.ts';
import { compileHeaders, compilePath, compileQuery, type HeaderPlan, type QueryPlan } from './head-rules.ts';
import { BODY_MISMATCH, type BodyPlan, compileBody, NOT_JSON, parseJson } from './json-body.ts';
import type { TransformOptions } from './options.ts';
import type { Template } from './template.ts';

export const GW_TRANSFORM_FAILED: ErrorCode = 'GW_TRANSFORM_FAILED';

// The route buffers up to the largest limit of its policies: this policy's own limit is checked here.
const BODY_TOO_LARGE = replyVerdict('GW_BODY_TOO_LARGE', 'body_over_policy_limit');

function failed(details: string): Verdict {
  const reply: LocalReply = { status: 400, code: GW_TRANSFORM_FAILED, details };
  return { kind: 'reply', reply };
}

interface RequestPlan {
  readonly body?: BodyPlan | undefined;
  readonly path?: Template | undefined;
  readonly headers?: HeaderPlan | undefined;
  readonly query?: QueryPlan | undefined;
}

interface ResponsePlan {
  readonly body?: BodyPlan | undefined;
  readonly headers?: HeaderPlan | undefined;
  readonly statusMap?: ReadonlyMap<number, number> | undefined;
}

export function createTransform(name: string, options: Readonly<TransformOptions>, deps: PolicyDeps): Policy {
  const req = options.request;
  const res = options.response;
  const request: RequestPlan = {
    body: req?.body && compileBody(req.body),
    path: req?.path === undefined ? undefined : compilePath(req.path),
    headers: req?.headers && compileHeaders(req.headers, 'join'),
    query: req?.query && compileQuery(req.query),
  };
  const response: ResponsePlan = {
    body: res?.body && compileBody(res.body),
    headers: res?.headers && compileHeaders(res.headers, 'array'),
    statusMap: res?.statusMap && new Map(Object.entries(res.statusMap).map(([from, to]) => [Number(from), to])),
  };
  const stripAcceptEncoding = response.body !== undefined;
  const limit = { maxBytes: options.maxBodySize };

  const policy: {
    -readonly [K in keyof Policy]: Policy[K];
  } = { name, type: 'transform' };
  if (request.body !== undefined) policy.requestBody = limit;
  if (response.body !== undefined) policy.responseBody = limit;
  if (req !== undefined || stripAcceptEncoding) {
    policy.onRequest = (ex) => onRequest(ex, request, stripAcceptEncoding, options.maxBodySize);
  }
  if (res !== undefined) policy.onResponse = (ex) => onResponse(ex, response, deps, name);
  return policy;
}

function onRequest(ex: Exchange, plan: RequestPlan, stripAcceptEncoding: boolean, maxBytes: number): Verdict {
  const head = ex.request;
  if (plan.body !== undefined && ex.body !== undefined && ex.body.length > 0) {
    if (ex.body.length > maxBytes) return BODY_TOO_LARGE;
    const parsed = parseJson(ex.body);
    if (parsed === NOT_JSON) return failed('request_body_not_json');
    let text: string;
    try {
      const out = plan.body.apply(parsed, ex);
      if (out === BODY_MISMATCH) return failed('request_body_unwrap_missing');
      text = JSON.stringify(out);
    } catch (err) {
      // JSON.parse is iterative, but walking and writing the tree recurse: too deep a body overflows the stack.
      if (err instanceof RangeError) return failed('request_body_too_deep');
      throw err;
    }
    ex.body = Buffer.from(text);
    delete head.headers['content-length']; // the forwarder sends the new length
  }
  if (plan.path !== undefined) head.path = plan.path.render(ex);
  if (plan.headers !== undefined) {
    const invalid = plan.headers.apply(head.headers, ex);
    if (invalid !== undefined) return failed(`invalid_header_value:${invalid}`);
  }
  if (plan.query !== undefined) head.query = plan.query.apply(head.query, ex);
  if (stripAcceptEncoding) delete head.headers['accept-encoding'];
  return CONTINUE;
}

function onResponse(ex: Exchange, plan: ResponsePlan, deps: PolicyDeps, name: string): void {
  const response = ex.response;
  if (response === undefined) return;
  if (plan.body !== undefined && ex.responseBody !== undefined && ex.responseBody.length > 0) {
    rewriteResponseBody(ex, response.headers, plan.body);
  }
  if (plan.headers !== undefined) {
    const invalid = plan.headers.apply(response.headers, ex);
    // The upstream answered already: skip the header rather than fail the response.
    if (invalid !== undefined) deps.log.warn({ policy: name, header: invalid, id: ex.id }, 'invalid header value');
  }
  if (plan.statusMap !== undefined) {
    const mapped = plan.statusMap.get(response.status);
    if (mapped !== undefined) response.status = mapped;
  }
}

function rewriteResponseBody(ex: Exchange, headers: Record<string, unknown>, plan: BodyPlan): void {
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding !== 'identity') return;
  const parsed = parseJson(ex.responseBody!);
  if (parsed === NOT_JSON) return; // not JSON: passed through unchanged
  let text: string;
  try {
    const out = plan.apply(parsed, ex);
    if (out === BODY_MISMATCH) return;
    text = JSON.stringify(out);
  } catch (err) {
    if (err instanceof RangeError) return; // too deep to rewrite: passed through unchanged
    throw err;
  }
  ex.responseBody = Buffer.from(text);
  delete headers['content-length'];
}
