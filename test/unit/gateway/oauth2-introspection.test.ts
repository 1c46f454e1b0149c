import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { factory } from '../../../src/gateway/oauth2-introspection/index.ts';
import { startUpstream } from '../../helpers/http.ts';
import { createForTest, depsForTest, exchangeForTest, outcome, run } from './helpers.ts';

const T0 = 1_700_000_000_000;

/** A real RFC 7662 endpoint: tokens → answers; records each call's auth and form. */
async function introspectionServer(answers: Record<string, object>) {
  const calls: { authorization?: string; form: URLSearchParams }[] = [];
  const state = { status: 200, hold: undefined as Promise<void> | undefined };
  const server = await startUpstream((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c;
    });
    req.on('end', async () => {
      const form = new URLSearchParams(body);
      calls.push({ authorization: req.headers.authorization, form });
      if (state.hold) await state.hold;
      if (state.status !== 200) {
        res.writeHead(state.status).end();
        return;
      }
      const answer = answers[form.get('token') ?? ''] ?? { active: false };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  return { server, calls, state };
}

describe('oauth2-introspection', () => {
  test('active tokens pass (cached until exp), inactive 401, server errors 503', async (t) => {
    const exp = T0 / 1000 + 60;
    const { server, calls, state } = await introspectionServer({
      good: { active: true, sub: 'user-1', scope: 'orders:read', exp },
      nosub: { active: true, sub: 'stranger', exp },
    });
    t.after(() => server.close());
    let clock = T0;
    const deps = depsForTest([{ name: 'acme', jwt: { value: 'user-1' } }], () => clock);
    const p = createForTest(
      factory,
      {
        url: `${server.url}/introspect`,
        clientId: 'portico',
        clientSecret: 's e/cret',
        forwardClaims: { sub: 'x-user-id' },
      },
      deps,
    );
    t.after(() => p.close?.());

    const ex = exchangeForTest({ headers: { authorization: 'Bearer good' } });
    assert.equal(outcome(await run(p, ex)), 'continue');
    assert.equal(ex.consumer?.name, 'acme');
    assert.equal(ex.claims?.scope, 'orders:read');
    assert.equal(ex.request.headers['x-user-id'], 'user-1');
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.form.get('token'), 'good');
    const [id, secret] = Buffer.from(calls[0]!.authorization!.slice(6), 'base64').toString().split(':');
    assert.deepEqual([id, decodeURIComponent(secret!.replace(/\+/g, ' '))], ['portico', 's e/cret']);

    assert.equal(outcome(await run(p, exchangeForTest({ headers: { authorization: 'Bearer good' } }))), 'continue');
    assert.equal(calls.length, 1, 'answer cached by token hash');

    // Past the token's exp the cached answer is not used.
    clock = T0 + 61_000;
    assert.equal(
      outcome(await run(p, exchangeForTest({ headers: { authorization: 'Bearer good' } }))),
      '401 GW_AUTH_INVALID token_inactive',
    );

    const inactive = await run(p, exchangeForTest({ headers: { authorization: 'Bearer revoked' } }));
    assert.equal(outcome(inactive), '401 GW_AUTH_INVALID token_inactive');
    assert.match(String(inactive.kind === 'reply' && inactive.reply.headers?.['www-authenticate']), /invalid_token/);
    assert.equal(outcome(await run(p, exchangeForTest())), '401 GW_AUTH_MISSING token_missing');

    state.status = 500;
    const down = exchangeForTest({ headers: { authorization: 'Bearer other' } });
    assert.equal(outcome(await run(p, down)), '503 GW_AUTH_UNAVAILABLE introspection_unavailable');
  });

  test('concurrent requests with one token make one call; client auth in the body; consumer required', async (t) => {
    const { server, calls, state } = await introspectionServer({
      tok: { active: true, sub: 'user-1' },
      anon: { active: true, sub: 'nobody' },
    });
    t.after(() => server.close());
    let release!: () => void;
    state.hold = new Promise((r) => {
      release = r;
    });
    const deps = depsForTest([{ name: 'acme', jwt: { value: 'user-1' } }]);
    const p = createForTest(
      factory,
      {
        url: server.url,
        clientId: 'c',
        clientSecret: 's',
        clientAuth: 'body',
        consumer: 'required',
        tokenTypeHint: 'access_token',
      },
      deps,
    );
    t.after(() => p.close?.());
    const pending = [1, 2, 3].map(() => run(p, exchangeForTest({ headers: { authorization: 'Bearer tok' } })));
    for (let i = 0; i < 500 && calls.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    release();
    assert.deepEqual((await Promise.all(pending)).map(outcome), ['continue', 'continue', 'continue']);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.authorization, undefined);
    assert.equal(calls[0]!.form.get('client_id'), 'c');
    assert.equal(calls[0]!.form.get('token_type_hint'), 'access_token');
    state.hold = undefined;
    const anon = exchangeForTest({ headers: { authorization: 'Bearer anon' } });
    assert.equal(outcome(await run(p, anon)), '403 GW_FORBIDDEN token_no_consumer');
  });
});
