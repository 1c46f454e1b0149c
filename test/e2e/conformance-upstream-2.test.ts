/**
 * Broken HTTP/1.1 backends, second audit (RFC 9112, RFC 9110; nginx as the reference where they leave a
 * choice), end to end: raw node:net upstreams write exact bytes, the real portico process sits in front. The
 * rules: before the response started, a 502 (504 on a timeout) problem+json without a backend address; after
 * it started, the client connection is cut; the next request on the client connection and to the upstream
 * works, and no upstream connection is left behind.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { Session } from '../helpers/raw-session.ts';
import { onRequests, type RawUpstream, startRawUpstream } from '../helpers/raw-upstream.ts';
import { within } from '../helpers/within.ts';

const CRLF = '\r\n';
const OK = `HTTP/1.1 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`;

/** Released by a test: what a script waits for before it goes on (no timing thresholds). */
const gates = new Map<string, () => void>();
function gate(name: string): Promise<void> {
  return new Promise((resolve) => gates.set(name, resolve));
}
function open(name: string): void {
  gates.get(name)?.();
  gates.delete(name);
}

/** path → what the upstream writes on its connection. */
const SCRIPTS: Record<string, (s: Socket) => void> = {
  '/ok': (s) => s.write(OK),
  // status line
  '/status/000': (s) => s.write(`HTTP/1.1 000 Zero${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/099': (s) => s.write(`HTTP/1.1 099 Low${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/no-sp': (s) => s.write(`HTTP/1.1 200${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/two-sp': (s) => s.write(`HTTP/1.1 200  OK${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/lower': (s) => s.write(`http/1.1 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/lead-sp': (s) => s.write(` HTTP/1.1 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/503': (s) => s.write(`HTTP/1.1 503 Busy${CRLF}retry-after: 7${CRLF}content-length: 4${CRLF}${CRLF}busy`),
  // framing
  '/http10/te-keepalive': (s) =>
    s.write(
      `HTTP/1.0 200 OK${CRLF}connection: keep-alive${CRLF}transfer-encoding: chunked${CRLF}${CRLF}2${CRLF}ok${CRLF}0${CRLF}${CRLF}`,
    ),
  '/http10/te-close': (s) =>
    s.end(`HTTP/1.0 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}2${CRLF}ok${CRLF}0${CRLF}${CRLF}`),
  '/http10/keepalive': (s) =>
    s.write(`HTTP/1.0 200 OK${CRLF}connection: keep-alive${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/chunk/ext': (s) =>
    s.write(
      `HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}2;a=b;q="x y"${CRLF}ok${CRLF}0;end${CRLF}${CRLF}`,
    ),
  '/chunk/trailer-close': (s) =>
    s.write(
      `HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}2${CRLF}ok${CRLF}0${CRLF}connection: close${CRLF}x-t: 1${CRLF}${CRLF}`,
    ),
  '/hdr/many': (s) => s.write(`HTTP/1.1 200 OK${CRLF}${`a:${CRLF}`.repeat(3000)}content-length: 2${CRLF}${CRLF}ok`),
  // a head alone, then…
  '/alone/then-body': (s) => {
    s.write(`HTTP/1.1 200 OK${CRLF}content-type: text/event-stream${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`);
    void gate('then-body').then(() => s.write(`5${CRLF}hello${CRLF}0${CRLF}${CRLF}`));
  },
  '/alone/stall': (s) => s.write(`HTTP/1.1 200 OK${CRLF}content-length: 10${CRLF}${CRLF}`),
  '/alone/bad-chunk': (s) => {
    s.write(`HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`);
    void gate('bad-chunk').then(() => s.write(`fffffffffffffffffff${CRLF}ok`));
  },
  // resets and closes
  '/rst/mid-head': (s) => {
    s.write(`HTTP/1.1 200 OK${CRLF}content-le`);
    setTimeout(() => s.resetAndDestroy(), 20);
  },
  '/info/close': (s) => {
    s.write(`HTTP/1.1 103 Early Hints${CRLF}link: </a.css>; rel=preload${CRLF}${CRLF}`);
    setTimeout(() => s.end(), 20);
  },
  '/info/rst': (s) => {
    s.write(`HTTP/1.1 102 Processing${CRLF}${CRLF}`);
    setTimeout(() => s.resetAndDestroy(), 20);
  },
};

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The whole response arrived (false: cut before its end, or no response at all). */
  readonly complete: boolean;
  readonly interim: number[];
}

/** One GET on a fresh connection; never rejects. `onHead` runs when the head arrives. */
function call(base: string, path: string, onHead?: () => void): Promise<Reply> {
  return new Promise((resolve) => {
    const interim: number[] = [];
    const req = request(`${base}${path}`, { agent: false });
    req.on('information', (info) => interim.push(info.statusCode));
    req.on('response', (res) => {
      onHead?.();
      const chunks: Buffer[] = [];
      let done = false;
      const finish = (complete: boolean) => {
        if (done) return;
        done = true;
        const body = Buffer.concat(chunks).toString('latin1');
        resolve({ status: res.statusCode!, headers: res.headers, body, complete, interim });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(res.complete));
      res.on('error', () => finish(false));
      res.on('aborted', () => finish(false));
      res.on('close', () => finish(res.complete));
    });
    req.on('error', () => resolve({ status: 0, headers: {}, body: '', complete: false, interim }));
    req.end();
  });
}

function assertProblem(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `status (body: ${r.body})`);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const body = JSON.parse(r.body) as { code: string };
  assert.equal(body.code, code);
  assert.doesNotMatch(r.body, /127\.0\.0\.1|localhost|:\d{4,5}\b|\bat\s|Error:/, 'no address, message or stack');
  assert.ok(r.complete);
}

describe('conformance: broken HTTP/1.1 upstreams, second audit', () => {
  let p: PorticoProcess;
  let up: RawUpstream;
  let base: string;
  let admin: string;
  /** Requests the upstream read, by path, in order. */
  const seen: string[] = [];

  before(async () => {
    up = await startRawUpstream((conn) => {
      onRequests(conn.socket, (req) => {
        seen.push(req.path);
        const script = SCRIPTS[req.path];
        if (script === undefined) conn.socket.end(`HTTP/1.1 404 Not Found${CRLF}content-length: 0${CRLF}${CRLF}`);
        else script(conn.socket);
      });
    });
    // One connection per target: a failure that leaked it would leave every later request waiting.
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
admin: { address: "127.0.0.1:0" }
upstreams:
  - name: raw
    targets: [ { url: ${up.url} } ]
    timeouts: { response: 2s, idle: 400ms }
    maxConnectionsPerTarget: 1
    retries: { attempts: 1 }
routes:
  - { name: raw, match: { path: /* }, upstream: raw }
`);
    base = p.url();
    admin = `http://${String(p.lines.find((l) => l.msg === 'started')!.admin)}`;
  });

  after(async () => {
    for (const name of [...gates.keys()]) open(name);
    await p?.stop();
    await up?.close();
  });

  /** The request path for `script` (the route passes it through). */
  const u = (script: string) => script;

  describe('status line (RFC 9112 §4, RFC 9110 §15)', () => {
    for (const code of ['000', '099']) {
      it(`status ${code} → 502 GW_UPSTREAM_BAD_RESPONSE at once (not taken for a 1xx and waited on until 504)`, async () => {
        assertProblem(await call(base, u(`/status/${code}`)), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      });
    }
    it('no reason phrase and no space after the code, or two spaces: the response (as nginx reads it)', async () => {
      for (const path of ['/status/no-sp', '/status/two-sp']) {
        const r = await call(base, u(path));
        assert.equal(r.status, 200, path);
        assert.equal(r.body, 'ok');
        assert.ok(r.complete);
      }
    });
    it('a lowercase version or a space before it → 502 GW_UPSTREAM_BAD_RESPONSE', async () => {
      for (const path of ['/status/lower', '/status/lead-sp']) {
        assertProblem(await call(base, u(path)), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      }
    });
    it("a 503's Retry-After reaches the client with the upstream's body", async () => {
      const r = await call(base, u('/status/503'));
      assert.equal(r.status, 503);
      assert.equal(r.headers['retry-after'], '7');
      assert.equal(r.body, 'busy');
    });
  });

  describe('framing (RFC 9112 §6, §7)', () => {
    it('Transfer-Encoding in an HTTP/1.0 response (keep-alive or not) → 502: faulty framing (RFC 9112 §6.1)', async () => {
      for (const path of ['/http10/te-keepalive', '/http10/te-close']) {
        assertProblem(await call(base, u(path)), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      }
    });
    it('an HTTP/1.0 keep-alive response with a Content-Length is forwarded whole', async () => {
      const r = await call(base, u('/http10/keepalive'));
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
    });
    it('chunk extensions are ignored', async () => {
      const r = await call(base, u('/chunk/ext'));
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
      assert.ok(r.complete);
    });
    it('3000 header lines (under the size limit): forwarded, no crash', async () => {
      const r = await call(base, u('/hdr/many'));
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
    });
    it('a trailer `Connection: close` never breaks the next request on that upstream connection', async () => {
      const s = await Session.open(p.port());
      try {
        const first = await s.exchange('GET', u('/chunk/trailer-close'));
        assert.equal(first.status, 200);
        assert.equal(first.body, 'ok');
        // Same client connection, same upstream: its own answer, not a 502 from a parser left closed.
        const next = await s.exchange('GET', u('/ok'));
        assert.equal(next.status, 200, next.body);
        assert.equal(next.body, 'ok');
      } finally {
        s.close();
      }
    });
  });

  describe('a response head that comes alone', () => {
    it('reaches the client before any body byte (an event stream), as nginx sends it', async () => {
      let headArrived!: () => void;
      const head = new Promise<void>((resolve) => {
        headArrived = resolve;
      });
      const reply = call(base, u('/alone/then-body'), headArrived);
      // The upstream sends its body only once the client has the head.
      await within(head, 5000, 'the response head, before its body');
      open('then-body');
      const r = await within(reply, 5000, 'the body');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'hello');
      assert.ok(r.complete);
    });
    it('then a body that stalls past timeouts.idle: the client has the 200 head, then the connection is cut', async () => {
      const r = await within(call(base, u('/alone/stall')), 5000, 'the cut');
      assert.equal(r.status, 200);
      assert.equal(r.complete, false);
    });
    it('then an invalid chunk size: the client has the 200 head, then the connection is cut', async () => {
      let headArrived!: () => void;
      const head = new Promise<void>((resolve) => {
        headArrived = resolve;
      });
      const reply = call(base, u('/alone/bad-chunk'), headArrived);
      await within(head, 5000, 'the response head');
      open('bad-chunk');
      const r = await within(reply, 5000, 'the cut');
      assert.equal(r.status, 200);
      assert.equal(r.complete, false);
    });
  });

  describe('resets and closes before the final head', () => {
    it('a reset in the middle of the head → 502 GW_UPSTREAM_RESET', async () => {
      assertProblem(await call(base, u('/rst/mid-head')), 502, 'GW_UPSTREAM_RESET');
    });
    for (const [path, status] of [
      ['/info/close', 103],
      ['/info/rst', 102],
    ] as const) {
      it(`a ${status} then a ${path.endsWith('rst') ? 'reset' : 'close'}: 502 GW_UPSTREAM_RESET, the request sent once (the upstream had it: no keep-alive race)`, async () => {
        const before = seen.filter((s) => s === path).length;
        const r = await call(base, u(path));
        assertProblem(r, 502, 'GW_UPSTREAM_RESET');
        assert.deepEqual(r.interim, [status], 'the interim response once');
        assert.equal(seen.filter((s) => s === path).length - before, 1, 'sent to the upstream once');
      });
    }
  });

  describe('after every failure', () => {
    it('the same client connection carries the next request, after a 502', async () => {
      const s = await Session.open(p.port());
      try {
        const bad = await s.exchange('GET', u('/status/lower'));
        assert.equal(bad.status, 502);
        const ok = await s.exchange('GET', u('/ok'));
        assert.equal(ok.status, 200);
        assert.equal(ok.body, 'ok');
      } finally {
        s.close();
      }
    });
    it('the one pooled connection is free: ten requests in a row succeed, and at most one upstream socket is open', async () => {
      for (let i = 0; i < 10; i++) {
        const r = await within(call(base, u('/ok')), 5000, `request ${i}`);
        assert.equal(r.status, 200);
      }
      const open = up.connections.filter((c) => !c.socket.destroyed && !c.socket.readableEnded);
      assert.ok(open.length <= 1, `${open.length} upstream connections left open`);
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      const active = metrics.split('\n').find((l) => l.startsWith('portico_upstream_active_requests{upstream="raw"}'));
      assert.match(active ?? '', / 0$/, 'no attempt left in flight');
    });
    it('portico is up and wrote no stack trace', async () => {
      assert.equal((await call(base, u('/ok'))).status, 200);
      assert.doesNotMatch(p.stderr, /\bat\s|Error/);
    });
  });
});
