/**
 * Conformance of the load-balancer role against broken backends and hostile clients, end to end through the
 * real `portico` process, with real upstream servers on 127.0.0.1:0 that count every request they receive:
 * what is retried where (and what never is), forged sticky cookies, consistent hashing under a target
 * outage, hostile health-check endpoints, circuit limits, and spread under concurrency.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, it } from 'node:test';
import { rawExchange, statusOf } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';
import { tally, until, workers } from './balancing-helpers.ts';

/** What a counting backend does with a proxied request; `/healthz` goes to `check` instead. */
type Behave = (req: IncomingMessage, res: ServerResponse) => void;

interface Backend {
  readonly name: string;
  readonly url: string;
  /** Proxied requests received: method, the client's `x-probe` header, and a sequence number over all backends. */
  readonly arrivals: { method: string; probe: string; seq: number }[];
  checks: number;
  behave: Behave;
  check: Behave;
  close(): Promise<void>;
}

const ok =
  (name: string): Behave =>
  (req, res) => {
    req.resume();
    req.once('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name });
      res.end(name);
    });
  };

const status =
  (code: number, headers: Record<string, string> = {}): Behave =>
  (req, res) => {
    req.resume();
    res.writeHead(code, { 'content-type': 'text/plain', ...headers });
    res.end(`status ${code}`);
  };

/** Resets the connection once the request head arrived: some bytes surely reached it. */
const reset: Behave = (req) => req.socket.resetAndDestroy();

const healthy: Behave = (_req, res) => {
  res.writeHead(200);
  res.end('ok');
};

const backends: Backend[] = [];
let sequence = 0;
const sockets = new Set<Socket>();

async function backend(name: string, behave: Behave = ok(name)): Promise<Backend> {
  const b: Backend = {
    name,
    url: '',
    arrivals: [],
    checks: 0,
    behave,
    check: healthy,
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
  const server = http.createServer((req, res) => {
    if (req.url === '/healthz') {
      b.checks++;
      b.check(req, res);
      return;
    }
    b.arrivals.push({ method: req.method ?? '', probe: String(req.headers['x-probe'] ?? ''), seq: sequence++ });
    b.behave(req, res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  (b as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  backends.push(b);
  return b;
}

const list = (bs: readonly Backend[]) => `[ ${bs.map((b) => `{ url: "${b.url}" }`).join(', ')} ]`;
/** Names of the backends `probe` reached, in the order it reached them. */
const arrivalsOf = (bs: readonly Backend[], probe: string) =>
  bs
    .flatMap((b) => b.arrivals.filter((a) => a.probe === probe).map((a) => ({ name: b.name, seq: a.seq })))
    .sort((x, y) => x.seq - y.seq)
    .map((a) => a.name);

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly headers: Headers;
}

async function send(url: string, init: RequestInit = {}): Promise<Reply> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.text(), headers: res.headers };
}

const problemCode = (r: Reply): string => (JSON.parse(r.body) as { code?: string }).code ?? '';
const cookiePair = (setCookie: string | null): string => (setCookie ?? '').split(';')[0]!;

describe('conformance: load balancing under broken backends and hostile clients', async () => {
  // Retries.
  const rst = await backend('rst', reset);
  const rstPeer = await backend('rst-peer');
  const s503 = [await backend('u1', status(503, { 'retry-after': '7' })), await backend('u2', status(503))];
  const s503b = [await backend('u3', status(503)), await backend('u4', status(503))];
  const okAfter503 = await backend('ok503');
  const partial = await backend('partial', (req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100' });
    res.write('half', () => setTimeout(() => res.socket?.resetAndDestroy(), 20));
  });
  const partialPeer = await backend('partial-peer');
  const refusedPort = await freePort();
  const afterRefused = await backend('after-refused');
  // Sticky.
  const st = [await backend('st1'), await backend('st2'), await backend('st3')];
  // Hashing.
  const hs = [await backend('h1'), await backend('h2'), await backend('h3'), await backend('h4')];
  // Hostile health checks: each check endpoint misbehaves in its own way.
  const hangs = await backend('hangs');
  hangs.check = () => {}; // never answers
  const huge = await backend('huge');
  huge.check = (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const chunk = Buffer.alloc(64 * 1024, 120);
    let sent = 0;
    const pump = () => {
      while (sent < 2048 && res.write(chunk)) sent++; // at most 128 MiB, if anyone read it all
      if (sent < 2048 && !res.destroyed) res.once('drain', pump);
      else res.end();
    };
    pump();
  };
  const slow = await backend('slow');
  slow.check = (_req, res) => {
    const t = setTimeout(() => healthy(_req, res), 3000);
    res.once('close', () => clearTimeout(t));
  };
  const redirects = await backend('redirects');
  redirects.check = (_req, res) => {
    res.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
    res.end();
  };
  const flapping = await backend('flapping');
  const steady = await backend('steady');
  // Circuit limits.
  const held: ServerResponse[] = [];
  const holding = await backend('holding', (req, res) => {
    req.resume();
    held.push(res);
  });
  // Spread under concurrency.
  const slowish = (name: string): Behave => {
    const reply = ok(name);
    return (req, res) => {
      setTimeout(() => reply(req, res), 5);
    };
  };
  const rr = [await backend('rr1'), await backend('rr2'), await backend('rr3')];
  const lr = [await backend('lr1'), await backend('lr2'), await backend('lr3'), await backend('lr4')];
  for (const b of [...rr, ...lr]) b.behave = slowish(b.name);

  const SECRET = 'conformance-sticky-secret-0123';
  const noEject = 'health: { passive: { consecutiveFailures: 0 } }';
  const checks = (extra = '') =>
    `health: { active: { path: /healthz, interval: 100ms, timeout: 300ms, healthyThreshold: 2, unhealthyThreshold: 1${extra} }, passive: { consecutiveFailures: 0 } }`;
  const p: PorticoProcess = await startPortico(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0 }
  - { name: edge, protocol: http, address: 127.0.0.1:0, trustedProxies: [127.0.0.1/32] }
upstreams:
  - name: post-reset
    balance: round-robin
    targets: ${list([rst, rstPeer])}
    ${noEject}
    retries: { attempts: 3, on: [connect-failure, reset, 502, 503] }
  - name: all-503
    balance: round-robin
    targets: ${list([...s503, ...s503b])}
    ${noEject}
    retries: { attempts: 3, on: [503], budget: { percent: 100, minConcurrency: 100 } }
  - name: one-503
    balance: round-robin
    targets: ${list([s503[1]!, okAfter503])}
    ${noEject}
    retries: { attempts: 2, on: [503] }
  - name: no-retry
    balance: round-robin
    targets: ${list([s503[1]!, okAfter503])}
    ${noEject}
    retries: { attempts: 1, on: [503] }
  - name: partial
    balance: round-robin
    targets: ${list([partial, partialPeer])}
    ${noEject}
    retries: { attempts: 3, on: [connect-failure, reset, 502, 503], nonIdempotent: true }
  - name: refused
    balance: round-robin
    targets: [ { url: "http://127.0.0.1:${refusedPort}" }, { url: "${afterRefused.url}" } ]
    ${noEject}
  - name: sticky
    balance: round-robin
    targets: ${list(st)}
    ${checks()}
    sticky: { secret: ${SECRET}, ttl: 10m }
  - name: sticky-other
    balance: round-robin
    targets: ${list(st)}
    sticky: { secret: other-secret-0123456789abcdef }
  - name: hash
    balance: consistent-hash
    hashOn: { header: x-key }
    targets: ${list(hs)}
    ${checks()}
  - name: hash-cookie
    balance: consistent-hash
    hashOn: { cookie: uid }
    targets: ${list(hs)}
  - name: hostile-checks
    balance: round-robin
    targets: ${list([hangs, huge, slow, redirects, flapping, steady])}
    ${checks()}
  - name: redirect-fails
    balance: round-robin
    targets: ${list([redirects, steady])}
    health: { active: { path: /healthz, interval: 100ms, timeout: 300ms, expectedStatuses: [200], unhealthyThreshold: 1 } }
  - name: limited
    targets: ${list([holding])}
    circuitBreaker: { maxRequests: 3 }
  - { name: rr, balance: round-robin, targets: ${list(rr)} }
  - { name: lr, balance: least-request, targets: ${list(lr)} }
routes:
  - { name: post-reset, match: { path: /post-reset/* }, upstream: post-reset }
  - { name: all-503, match: { path: /all-503/* }, upstream: all-503 }
  - { name: one-503, match: { path: /one-503/* }, upstream: one-503 }
  - { name: no-retry, match: { path: /no-retry/* }, upstream: no-retry }
  - { name: partial, match: { path: /partial/* }, upstream: partial }
  - { name: refused, match: { path: /refused/* }, upstream: refused }
  - { name: sticky, match: { path: /sticky/* }, upstream: sticky }
  - { name: sticky-other, match: { path: /sticky-other/* }, upstream: sticky-other }
  - { name: hash, match: { path: /hash/* }, upstream: hash }
  - { name: hash-cookie, match: { path: /hash-cookie/* }, upstream: hash-cookie }
  - { name: hostile-checks, match: { path: /hostile/* }, upstream: hostile-checks }
  - { name: redirect-fails, match: { path: /redirect-fails/* }, upstream: redirect-fails }
  - { name: limited, match: { path: /limited/* }, upstream: limited }
  - { name: rr, match: { path: /rr/* }, upstream: rr }
  - { name: lr, match: { path: /lr/* }, upstream: lr }
`);
  const base = p.url();
  const port = new URL(base).port;

  const closeAll = async () => {
    for (const r of held.splice(0)) r.destroy();
    await p.stop();
    for (const s of sockets) s.destroy();
    for (const b of backends) await b.close();
  };
  process.once('beforeExit', () => void closeAll());

  describe('retries', () => {
    it('a POST whose request reached a target that reset is never sent to a second target', async () => {
      for (let i = 0; i < 4; i++) {
        const probe = `post-reset-${i}`;
        const r = await send(`${base}/post-reset/x`, {
          method: 'POST',
          headers: { 'x-probe': probe, 'content-type': 'text/plain' },
          body: 'payload',
        });
        const seen = arrivalsOf([rst, rstPeer], probe);
        assert.equal(seen.length, 1, `${probe}: arrived at ${seen.join(',')}`);
        assert.equal(r.status, seen[0] === 'rst' ? 502 : 200, probe);
      }
      // The same, without a body.
      for (let i = 0; i < 4; i++) {
        const probe = `post-empty-${i}`;
        await send(`${base}/post-reset/x`, { method: 'POST', headers: { 'x-probe': probe } });
        assert.equal(arrivalsOf([rst, rstPeer], probe).length, 1, probe);
      }
    });

    it('an idempotent GET after a reset is retried on the other target', async () => {
      for (let i = 0; i < 4; i++) {
        const probe = `get-reset-${i}`;
        const r = await send(`${base}/post-reset/x`, { headers: { 'x-probe': probe } });
        assert.equal(r.status, 200, probe);
        const seen = arrivalsOf([rst, rstPeer], probe);
        // A reset may meet a pooled connection (resent once on a fresh one): at most the reset target twice over.
        assert.equal(seen.at(-1), 'rst-peer', `${probe}: ${seen.join(',')}`);
        assert.ok(seen.length <= 4, `${probe}: ${seen.join(',')}`);
      }
    });

    it('attempts: 3 over four failing targets → exactly three arrivals, all different, the last 503 as sent', async () => {
      for (let i = 0; i < 6; i++) {
        const probe = `all-503-${i}`;
        const r = await send(`${base}/all-503/x`, { headers: { 'x-probe': probe } });
        assert.equal(r.status, 503, probe);
        assert.equal(r.body, 'status 503', `${probe}: the upstream's own 503 is forwarded`);
        const seen = arrivalsOf([...s503, ...s503b], probe);
        assert.equal(seen.length, 3, `${probe}: ${seen.join(',')}`);
        assert.equal(new Set(seen).size, 3, `${probe}: a retry went to a target already tried: ${seen.join(',')}`);
        // The upstream's Retry-After travels with its 503 untouched (only u1 sends one).
        if (seen.at(-1) === 'u1') assert.equal(r.headers.get('retry-after'), '7');
        else assert.equal(r.headers.get('retry-after'), null);
      }
    });

    it('a 503 is retried on the next target; attempts: 1 returns it as is', async () => {
      for (let i = 0; i < 4; i++) {
        const probe = `one-503-${i}`;
        const r = await send(`${base}/one-503/x`, { headers: { 'x-probe': probe } });
        assert.equal(r.status, 200, probe);
        assert.ok(arrivalsOf([s503[1]!, okAfter503], probe).length <= 2, probe);
      }
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const probe = `no-retry-${i}`;
        const r = await send(`${base}/no-retry/x`, { headers: { 'x-probe': probe } });
        statuses.push(r.status);
        assert.equal(arrivalsOf([s503[1]!, okAfter503], probe).length, 1, probe);
      }
      assert.deepEqual(new Set(statuses), new Set([200, 503]));
    });

    it('never retried once response bytes reached the client (even with nonIdempotent)', async () => {
      for (let i = 0; i < 4; i++) {
        const probe = `partial-${i}`;
        const raw = await rawExchange(
          Number(port),
          `GET /partial/x HTTP/1.1\r\nHost: a\r\nx-probe: ${probe}\r\nConnection: close\r\n\r\n`,
        );
        const seen = arrivalsOf([partial, partialPeer], probe);
        assert.equal(seen.length, 1, `${probe}: ${seen.join(',')}`);
        if (seen[0] === 'partial') {
          assert.equal(statusOf(raw), 200);
          assert.ok(
            raw.endsWith('half'),
            `${probe}: truncated body, nothing appended: ${JSON.stringify(raw.slice(-40))}`,
          );
        }
      }
    });

    it('a connect failure is retried for any method, uploads too (nothing was sent or read)', async () => {
      for (const method of ['GET', 'DELETE', 'POST', 'PATCH']) {
        for (let i = 0; i < 2; i++) {
          const probe = `refused-${method}-${i}`;
          const r = await send(`${base}/refused/x`, { method, headers: { 'x-probe': probe } });
          assert.equal(r.status, 200, `${probe}: ${r.body}`);
          assert.deepEqual(arrivalsOf([afterRefused], probe), ['after-refused'], probe);
        }
      }
      // An upload whose connection was refused was never read: it goes whole to the healthy target, once.
      for (let i = 0; i < 4; i++) {
        const probe = `refused-upload-${i}`;
        const r = await send(`${base}/refused/x`, {
          method: 'POST',
          headers: { 'x-probe': probe, 'content-type': 'text/plain' },
          body: 'payload',
        });
        assert.equal(r.status, 200, `${probe}: ${r.body}`);
        assert.deepEqual(arrivalsOf([afterRefused], probe), ['after-refused'], probe);
      }
    });
  });

  describe('sticky sessions', () => {
    it('Set-Cookie carries Path=/, HttpOnly, SameSite=Lax, the ttl as Max-Age and Secure over HTTPS, and names no address', async () => {
      assert.ok(await until(() => st.every((b) => b.checks >= 1)));
      assert.ok(await until(async () => (await send(`${base}/sticky/x`)).status === 200));
      const r = await send(`${base}/sticky/x`);
      const sc = r.headers.get('set-cookie')!;
      assert.match(sc, /^portico_sticky=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+; /);
      for (const attr of ['Path=/', 'HttpOnly', 'SameSite=Lax', 'Max-Age=600']) {
        assert.ok(sc.split('; ').includes(attr), `${attr} in ${sc}`);
      }
      assert.ok(!sc.includes('127.0.0.1') && !sc.includes(new URL(st[0]!.url).port), sc);
      assert.ok(!sc.split('; ').includes('Secure'), `no Secure over plain HTTP: ${sc}`);
      // Over HTTPS (here: a trusted TLS terminator in front says so) the cookie is Secure; an untrusted
      // client saying so is ignored.
      const edge = `http://127.0.0.1:${p.port('edge')}`;
      const tls = await send(`${edge}/sticky/x`, { headers: { 'x-forwarded-proto': 'https' } });
      assert.ok(tls.headers.get('set-cookie')!.split('; ').includes('Secure'), tls.headers.get('set-cookie')!);
      const forged = await send(`${base}/sticky/x`, { headers: { 'x-forwarded-proto': 'https' } });
      assert.ok(!forged.headers.get('set-cookie')!.split('; ').includes('Secure'));
    });

    it('forged, tampered, foreign and CR/LF-laden cookies never pin and never crash', async () => {
      const first = await send(`${base}/sticky/x`);
      const valid = cookiePair(first.headers.get('set-cookie'));
      const [name, value] = valid.split('=') as [string, string];
      const [id, sig] = value.split('.') as [string, string];
      const other = cookiePair((await send(`${base}/sticky-other/x`)).headers.get('set-cookie'));
      const flip = (s: string) => (s[0] === 'A' ? 'B' : 'A') + s.slice(1);
      const forged = [
        `${name}=`,
        `${name}=.`,
        `${name}=${id}`,
        `${name}=${id}.`,
        `${name}=${id}.${flip(sig)}`,
        `${name}=${flip(id)}.${sig}`,
        `${name}=${id}.${sig}${sig}`,
        `${name}=${id}.${sig.slice(0, -1)}`,
        `${name}=${id}%0D%0A.${sig}`,
        `${name}=${id}.${sig}%0d%0aSet-Cookie:%20x=1`,
        `${name}=${'A'.repeat(4000)}.${'B'.repeat(4000)}`,
        `${name}=${encodeURIComponent('127.0.0.1:80')}`,
        other.replace(/^[^=]+/, name),
      ];
      for (const cookie of forged) {
        const seen: string[] = [];
        for (let i = 0; i < 6; i++) {
          const r = await send(`${base}/sticky/x`, { headers: { cookie } });
          assert.equal(r.status, 200, cookie.slice(0, 80));
          // Not pinned: a fresh cookie each time, and round-robin carries on.
          assert.ok(r.headers.get('set-cookie'), cookie.slice(0, 80));
          seen.push(r.body);
        }
        assert.equal(new Set(seen).size, 3, `${cookie.slice(0, 80)}: ${seen.join(',')}`);
      }
      // A raw CR inside the Cookie field (RFC 9110 §5.5 forbids it): refused, nothing forwarded.
      const before = st.reduce((n, b) => n + b.arrivals.length, 0);
      const raw = await rawExchange(
        Number(port),
        `GET /sticky/x HTTP/1.1\r\nHost: a\r\nCookie: ${valid}\rx\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(statusOf(raw), 400);
      assert.equal(
        st.reduce((n, b) => n + b.arrivals.length, 0),
        before,
      );
      // The valid cookie still pins (the checks above did not disturb it).
      const pinned = await send(`${base}/sticky/x`, { headers: { cookie: valid } });
      for (let i = 0; i < 4; i++) {
        const r = await send(`${base}/sticky/x`, { headers: { cookie: `a=b; ${valid}; c=d` } });
        assert.equal(r.body, pinned.body);
        assert.equal(r.headers.get('set-cookie'), null);
      }
    });

    it('a client pinned to a target that fails its health checks moves, with a new cookie, and never lands on it', async () => {
      const first = await send(`${base}/sticky/x`);
      const valid = cookiePair(first.headers.get('set-cookie'));
      const sick = st.find((b) => b.name === first.body)!;
      sick.check = status(500);
      try {
        assert.ok(
          await until(async () => (await send(`${base}/sticky/x`, { headers: { cookie: valid } })).body !== sick.name),
        );
        const arrivedBefore = sick.arrivals.length;
        for (let i = 0; i < 6; i++) {
          const r = await send(`${base}/sticky/x`, { headers: { cookie: valid } });
          assert.notEqual(r.body, sick.name);
          assert.notEqual(cookiePair(r.headers.get('set-cookie')), valid);
          assert.ok(r.headers.get('set-cookie'));
        }
        assert.equal(sick.arrivals.length, arrivedBefore);
      } finally {
        sick.check = healthy;
      }
      // Back after healthyThreshold passes: the old cookie pins again.
      assert.ok(
        await until(async () => (await send(`${base}/sticky/x`, { headers: { cookie: valid } })).body === sick.name),
      );
    });
  });

  describe('consistent hashing', () => {
    const keys = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    const map = async (path: string, header: (k: string) => Record<string, string>) => {
      const out = new Map<string, string>();
      for (const k of keys) {
        const r = await send(`${base}${path}`, { headers: header(k) });
        assert.equal(r.status, 200, k);
        out.set(k, r.body);
      }
      return out;
    };

    it('header key: the same key keeps its target; a target that fails its checks moves only its keys', async () => {
      assert.ok(await until(() => hs.every((b) => b.checks >= 1)));
      assert.ok(
        await until(async () => (await send(`${base}/hash/x`, { headers: { 'x-key': 'warm' } })).status === 200),
      );
      const byHeader = (k: string) => ({ 'x-key': k });
      const before = await map('/hash/x', byHeader);
      assert.deepEqual(await map('/hash/x', byHeader), before, 'stable while the set is stable');
      const counts = tally([...before.values()]);
      assert.equal(Object.keys(counts).length, 4, JSON.stringify(counts));
      const gone = hs[1]!;
      gone.check = status(500);
      try {
        assert.ok(await until(isGone));
        const after = await map('/hash/x', byHeader);
        for (const k of keys) {
          if (before.get(k) === gone.name) assert.notEqual(after.get(k), gone.name, k);
          else assert.equal(after.get(k), before.get(k), `${k} moved though its target stayed`);
        }
      } finally {
        gone.check = healthy;
      }
      assert.ok(
        await until(
          async () => {
            const again = await map('/hash/x', byHeader);
            return keys.every((k) => again.get(k) === before.get(k));
          },
          40,
          100,
        ),
        'keys come back when the target does',
      );

      async function isGone(): Promise<boolean> {
        for (const k of keys.filter((k) => before.get(k) === gone.name).slice(0, 3)) {
          const r = await send(`${base}/hash/x`, { headers: { 'x-key': k } });
          if (r.body === gone.name) return false;
        }
        return true;
      }
    });

    it('cookie key: stable per key, spread over every target', async () => {
      const byCookie = (k: string) => ({ cookie: `other=1; uid=${k}` });
      const first = await map('/hash-cookie/x', byCookie);
      assert.deepEqual(await map('/hash-cookie/x', byCookie), first);
      assert.equal(Object.keys(tally([...first.values()])).length, 4);
    });
  });

  describe('active health checks against hostile check endpoints', () => {
    it('hanging, huge, slow and redirecting endpoints: checks time out, memory stays bounded', async () => {
      const serving = async () => {
        const names = new Set<string>();
        for (let i = 0; i < 12; i++) names.add((await send(`${base}/hostile/x`)).body);
        return names;
      };
      // 3xx passes the default ["200-399"]; a body of any size is not read; a hang or a late 200 fails.
      assert.ok(await until(() => hangs.checks >= 3 && slow.checks >= 2 && huge.checks >= 3, 100, 50));
      const names = await serving();
      assert.ok(
        names.has('steady') && names.has('flapping') && names.has('redirects') && names.has('huge'),
        [...names].join(),
      );
      assert.ok(!names.has('hangs') && !names.has('slow'), [...names].join());
      // The huge endpoint is checked again and again; Portico's memory does not grow with what it sends.
      const pid = p.child.pid!;
      const rssOf = async () => {
        const { readFile } = await import('node:fs/promises');
        const statm = await readFile(`/proc/${pid}/statm`, 'utf8');
        return Number(statm.split(' ')[1]) * 4096;
      };
      const start = huge.checks;
      assert.ok(await until(() => huge.checks >= start + 10, 100, 50));
      assert.ok((await rssOf()) < 400 * 1024 * 1024, 'RSS bounded');
    });

    it('a 3xx fails a check that expects only 200', async () => {
      assert.ok(
        await until(async () => {
          const names = new Set<string>();
          for (let i = 0; i < 4; i++) names.add((await send(`${base}/redirect-fails/x`)).body);
          return names.size === 1 && names.has('steady');
        }),
      );
    });

    it('a target that fails one check leaves, and comes back only after healthyThreshold passes in a row', async () => {
      flapping.check = status(500);
      const fails = flapping.checks;
      assert.ok(await until(() => flapping.checks >= fails + 2, 100, 50));
      const arrived = flapping.arrivals.length;
      for (let i = 0; i < 12; i++) assert.notEqual((await send(`${base}/hostile/x`)).body, 'flapping');
      assert.equal(flapping.arrivals.length, arrived);
      // Alternate pass, fail, pass…: never two in a row, never readmitted.
      let pass = false;
      flapping.check = (req, res) => {
        pass = !pass;
        (pass ? healthy : status(500))(req, res);
      };
      const alt = flapping.checks;
      assert.ok(await until(() => flapping.checks >= alt + 6, 100, 50));
      for (let i = 0; i < 12; i++) assert.notEqual((await send(`${base}/hostile/x`)).body, 'flapping');
      flapping.check = healthy;
      assert.ok(await until(async () => (await send(`${base}/hostile/x`)).body === 'flapping', 100, 50));
    });
  });

  describe('circuit breaking', () => {
    it('past maxRequests: 503 GW_UPSTREAM_OVERLOADED at once, nothing queued, recovers when load drops', async () => {
      const inflight = Array.from({ length: 3 }, () => send(`${base}/limited/x`));
      assert.ok(await until(() => held.length === 3));
      const refused = await Promise.all(Array.from({ length: 20 }, () => send(`${base}/limited/x`)));
      for (const r of refused) {
        assert.equal(r.status, 503);
        assert.equal(problemCode(r), 'GW_UPSTREAM_OVERLOADED');
        assert.match(r.headers.get('content-type') ?? '', /problem\+json/);
      }
      assert.equal(holding.arrivals.length, 3, 'no refused request reached the backend, now or later');
      for (const r of held.splice(0)) {
        r.writeHead(200);
        r.end('done');
      }
      assert.deepEqual(
        (await Promise.all(inflight)).map((r) => r.status),
        [200, 200, 200],
      );
      holding.behave = ok('holding');
      assert.equal((await send(`${base}/limited/x`)).status, 200);
      assert.equal(holding.arrivals.length, 4);
    });
  });

  describe('spread under concurrency', () => {
    it('round-robin and least-request: 16 concurrent workers, no target starved', async () => {
      for (const [path, group] of [
        ['/rr/x', rr],
        ['/lr/x', lr],
      ] as const) {
        const seen: string[] = [];
        await workers(16, 15, async () => {
          const r = await send(`${base}${path}`);
          assert.equal(r.status, 200);
          seen.push(r.body);
        });
        const counts = tally(seen);
        const fair = seen.length / group.length;
        for (const b of group) assert.ok((counts[b.name] ?? 0) >= fair / 3, `${path}: ${JSON.stringify(counts)}`);
      }
    });
  });

  it('portico is still up and never wrote a stack trace', async () => {
    assert.equal((await send(`${base}/rr/x`)).status, 200);
    assert.doesNotMatch(p.stderr, /\n\s+at /);
    await closeAll();
  });
});
