/**
 * @module The policy chain of one route: built once per generation, run per request.
 *
 * Request phase: policies' onRequest hooks in route order. Consecutive authenticating policies
 * (`policy.authenticates`) form one group in which any single success suffices; when all of them fail the
 * group answers with the reply of the first policy that found credentials (any code but GW_AUTH_MISSING),
 * else the first reply, carrying every member's WWW-Authenticate challenge. Response phase: onResponse hooks
 * in reverse order. A hook that throws (or rejects) ends the exchange with a 500 GW_INTERNAL reply whose
 * details are `policy_threw:<name>`, and is logged with the request id.
 *
 * Cost: synchronous hooks run in a plain loop and the runners return a Verdict directly; a promise is made
 * only from the first hook that returns one. An empty chain returns the shared CONTINUE without work, and
 * the proxy is expected to skip it altogether (`size === 0`).
 */
import type { LocalReply } from '../errors.ts';
import { gatewayReply } from './replies.ts';
import { CONTINUE, type Exchange, type Policy, type Verdict } from './types.ts';

export type Outcome = Verdict | Promise<Verdict>;

export interface Chain {
  /** Number of policies; 0 means the proxy may skip the chain. */
  readonly size: number;
  /** Largest `requestBody.maxBytes` of the policies (0: nobody needs the request body buffered). */
  readonly needsRequestBody: number;
  /** Largest `responseBody.maxBytes` (0: nobody needs the response body buffered). */
  readonly needsResponseBody: number;
  /** False when no policy has an onResponse hook: the proxy may skip runResponse. */
  readonly hasResponsePhase: boolean;
  /**
   * False when the response needs nothing from the chain but its reply headers (no onResponse hook, no
   * buffered response body): the proxy may write the upstream head as it does without policies.
   */
  readonly hasResponseWork: boolean;
  /** Request phase. `await` it: it is a Verdict when every hook answered synchronously, else a promise. */
  runRequest(ex: Exchange): Outcome;
  /**
   * Response phase in reverse order; `reply` only when a hook threw (500 GW_INTERNAL). When the request
   * phase ended early (`reply` or `respond`), only policies before the one that answered run.
   */
  runResponse(ex: Exchange): Outcome;
}

export interface ChainOptions {
  readonly log?: { error(obj: object, msg?: string): void };
  /** Called for every thrown hook (metrics). */
  readonly onPolicyError?: (policy: Policy, ex: Exchange, err: unknown) => void;
}

type Step = (ex: Exchange) => Outcome;
type Thrown = (policy: Policy, ex: Exchange, err: unknown) => Verdict;

const CHALLENGE = 'www-authenticate';
const defaultLog = { error: (obj: object, msg?: string) => console.error(msg, obj) };

function isPromise(v: Outcome): v is Promise<Verdict> {
  return typeof (v as PromiseLike<unknown>).then === 'function';
}

/** Where the request phase ended early: policies from this index on did not run (state key). */
const STOPPED_AT = Symbol('chain.stoppedAt');

interface CompiledStep {
  readonly run: Step;
  /** Index in the route's policy list of the step's first policy. */
  readonly at: number;
  /**
   * A step of one policy: `run` catches only synchronous throws and runSteps turns a rejection into the
   * policy's 500 in the same `then` that continues the chain (one promise per asynchronous hook, not two).
   */
  readonly policy?: Policy;
}

function stopped(ex: Exchange, at: number, v: Verdict): Verdict {
  ex.state.set(STOPPED_AT, at);
  return v;
}

/** Runs steps from index i; goes async only from the first step that returns a promise. */
function runSteps(steps: readonly CompiledStep[], ex: Exchange, i: number, thrown: Thrown): Outcome {
  for (; i < steps.length; i++) {
    const step = steps[i]!;
    const r = step.run(ex);
    if (isPromise(r)) {
      const next = i + 1;
      const policy = step.policy;
      return r.then(
        (v) => (v.kind === 'continue' ? runSteps(steps, ex, next, thrown) : stopped(ex, step.at, v)),
        policy === undefined ? undefined : (err: unknown) => stopped(ex, step.at, thrown(policy, ex, err)),
      );
    }
    if (r.kind !== 'continue') return stopped(ex, step.at, r);
  }
  return CONTINUE;
}

/** A hook whose synchronous throw becomes the policy's 500; a rejection is left to the caller. */
function syncGuarded(policy: Policy, thrown: Thrown): Step {
  const hook = policy.onRequest!.bind(policy);
  return (ex) => {
    try {
      return hook(ex);
    } catch (err) {
      return thrown(policy, ex, err);
    }
  };
}

/** A hook whose throw or rejection becomes the policy's 500 (members of an authentication group). */
function policyStep(policy: Policy, thrown: Thrown): Step {
  const run = syncGuarded(policy, thrown);
  return (ex) => {
    const r = run(ex);
    return isPromise(r) ? r.then(undefined, (err: unknown) => thrown(policy, ex, err)) : r;
  };
}

/** The group's answer when every member failed. */
function combineFailures(failures: readonly LocalReply[]): Verdict {
  const chosen = failures.find((r) => r.code !== 'GW_AUTH_MISSING') ?? failures[0]!;
  const challenges: string[] = [];
  for (const f of failures) {
    const c = f.headers?.[CHALLENGE];
    if (c !== undefined && !challenges.includes(c)) challenges.push(c);
  }
  if (challenges.length <= 1 && (challenges.length === 0 || chosen.headers?.[CHALLENGE] === challenges[0])) {
    return { kind: 'reply', reply: chosen };
  }
  return {
    kind: 'reply',
    reply: { ...chosen, headers: { ...chosen.headers, [CHALLENGE]: challenges.join(', ') } },
  };
}

function groupStep(members: readonly Step[]): Step {
  const tryFrom = (ex: Exchange, j: number, failures: LocalReply[]): Outcome => {
    for (; j < members.length; j++) {
      const r = members[j]!(ex);
      if (isPromise(r)) {
        const next = j + 1;
        return r.then((v) => {
          if (v.kind !== 'reply' || v.reply.code === 'GW_INTERNAL') return v;
          failures.push(v.reply);
          return tryFrom(ex, next, failures);
        });
      }
      if (r.kind !== 'reply' || r.reply.code === 'GW_INTERNAL') return r;
      failures.push(r.reply);
    }
    return combineFailures(failures);
  };
  return (ex) => tryFrom(ex, 0, []);
}

interface ResponseHook {
  readonly policy: Policy;
  /** Index in the route's policy list. */
  readonly at: number;
}

/** Hooks in reverse order, skipping policies whose request phase never ran (the chain stopped before them). */
function runResponseHooks(hooks: readonly ResponseHook[], ex: Exchange, i: number, thrown: Thrown): Outcome {
  const stop = ex.state.size === 0 ? undefined : (ex.state.get(STOPPED_AT) as number | undefined);
  for (; i < hooks.length; i++) {
    const { policy, at } = hooks[i]!;
    if (stop !== undefined && at >= stop) continue;
    let r: void | Promise<void>;
    try {
      r = policy.onResponse!(ex);
    } catch (err) {
      return thrown(policy, ex, err);
    }
    if (r !== undefined && typeof r.then === 'function') {
      const next = i + 1;
      return r.then(
        () => runResponseHooks(hooks, ex, next, thrown),
        (err: unknown) => thrown(policy, ex, err),
      );
    }
  }
  return CONTINUE;
}

const EMPTY: Chain = Object.freeze({
  size: 0,
  needsRequestBody: 0,
  needsResponseBody: 0,
  hasResponsePhase: false,
  hasResponseWork: false,
  runRequest: () => CONTINUE,
  runResponse: () => CONTINUE,
});

export function createChain(policies: readonly Policy[], options: ChainOptions = {}): Chain {
  if (policies.length === 0) return EMPTY;
  const log = options.log ?? defaultLog;
  const onPolicyError = options.onPolicyError;
  const internal = new Map<Policy, Verdict>();
  for (const p of policies) {
    internal.set(p, Object.freeze({ kind: 'reply', reply: gatewayReply('GW_INTERNAL', `policy_threw:${p.name}`) }));
  }
  const thrown: Thrown = (policy, ex, err) => {
    log.error({ err, requestId: ex.id, route: ex.routeName, policy: policy.name, type: policy.type }, 'policy threw');
    onPolicyError?.(policy, ex, err);
    return internal.get(policy)!;
  };

  const steps: CompiledStep[] = [];
  let group: Step[] = [];
  let groupPolicies: Policy[] = [];
  let groupAt = 0;
  const flush = (): void => {
    if (group.length === 1)
      steps.push({ run: syncGuarded(groupPolicies[0]!, thrown), at: groupAt, policy: groupPolicies[0]! });
    else if (group.length > 1) steps.push({ run: groupStep(group), at: groupAt });
    group = [];
    groupPolicies = [];
  };
  policies.forEach((p, at) => {
    if (p.onRequest === undefined) return;
    if (p.authenticates) {
      if (group.length === 0) groupAt = at;
      group.push(policyStep(p, thrown));
      groupPolicies.push(p);
      return;
    }
    flush();
    steps.push({ run: syncGuarded(p, thrown), at, policy: p });
  });
  flush();

  const responseHooks: ResponseHook[] = [];
  policies.forEach((policy, at) => {
    if (policy.onResponse !== undefined) responseHooks.unshift({ policy, at });
  });
  const needsResponseBody = Math.max(0, ...policies.map((p) => p.responseBody?.maxBytes ?? 0));
  return Object.freeze({
    size: policies.length,
    needsRequestBody: Math.max(0, ...policies.map((p) => p.requestBody?.maxBytes ?? 0)),
    needsResponseBody,
    hasResponsePhase: responseHooks.length > 0,
    hasResponseWork: responseHooks.length > 0 || needsResponseBody > 0,
    runRequest: (ex: Exchange) => runSteps(steps, ex, 0, thrown),
    runResponse: (ex: Exchange) => runResponseHooks(responseHooks, ex, 0, thrown),
  });
}
