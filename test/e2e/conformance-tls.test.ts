/**
 * Conformance of the TLS front of `https` listeners against hostile and unusual clients, as nginx, HAProxy
 * and Caddy behave: plain HTTP on the TLS port, handshakes that never finish, protocol versions, ciphers and
 * renegotiation, SNI edge cases, ALPN choices, client certificates that do not verify, certificate files
 * replaced by a broken pair, and clients that break the connection after the handshake.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { rawExchange, startEchoUpstream, statusOf, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { type CertFiles, certDir, makeCa, makeCert } from '../helpers/tls-certs.ts';
import { within } from '../helpers/within.ts';

/** `openssl s_client` against `port` with `args`; stdin is closed at once, so it quits after the handshake. */
function sClient(port: number, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(
      'openssl',
      ['s_client', '-connect', `127.0.0.1:${port}`, ...args],
      { timeout: 5000 },
      (_err, stdout, stderr) => resolve(`${stdout}${stderr}`),
    );
    child.stdin?.end();
  });
}

/** A client certificate signed by `ca` that expired in 2020 (`openssl ca` takes explicit dates). */
function makeExpiredCert(dir: string, ca: CertFiles): CertFiles {
  const key = join(dir, 'expired.key');
  const csr = join(dir, 'expired.csr');
  const cert = join(dir, 'expired.pem');
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  const cnf = join(dir, 'ca.cnf');
  writeFileSync(
    cnf,
    `[ca]\ndefault_ca = c\n[c]\ndatabase = ${dir}/index.txt\nserial = ${dir}/serial\nnew_certs_dir = ${dir}\n` +
      'default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\norganizationName = optional\n',
  );
  const quiet = { stdio: ['ignore', 'ignore', 'pipe'] as ('ignore' | 'pipe')[] };
  execFileSync(
    'openssl',
    [
      'req',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-subj',
      '/O=Acme/CN=billing',
      '-keyout',
      key,
      '-out',
      csr,
    ],
    quiet,
  );
  execFileSync(
    'openssl',
    [
      'ca',
      '-batch',
      '-config',
      cnf,
      '-cert',
      ca.cert,
      '-keyfile',
      ca.key,
      '-in',
      csr,
      '-out',
      cert,
      '-startdate',
      '20200101000000Z',
      '-enddate',
      '20200102000000Z',
      '-notext',
    ],
    quiet,
  );
  return { cert, key };
}

/** Resolves once `socket` closes; rejects (naming `what`) if it is still open after `ms`. */
function closedWithin(socket: Socket, ms: number, what: string): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  // Not events.once: it would reject on the 'error' that often comes first.
  return within(new Promise<void>((resolve) => socket.once('close', () => resolve())), ms, what);
}

/** A TLS connection's outcome: negotiated (protocol, ALPN, certificate CN) or the error it failed with. */
async function handshake(
  port: number,
  options: ConnectionOptions,
): Promise<{ ok: true; socket: TLSSocket; cn: string } | { ok: false; code: string }> {
  const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
  // Errors after the handshake (an alert, a reset) are seen by the reads that follow.
  socket.on('error', () => {});
  const result = await within(
    new Promise<'ok' | string>((resolve) => {
      socket.once('secureConnect', () => resolve('ok'));
      socket.once('error', (err: Error & { code?: string }) => resolve(err.code ?? err.message));
      socket.once('close', () => resolve('closed'));
    }),
    5000,
    'TLS handshake',
  );
  if (result !== 'ok') {
    socket.destroy();
    return { ok: false, code: result };
  }
  return { ok: true, socket, cn: socket.getPeerCertificate().subject?.CN as string };
}

/** Sends one HTTP/1.1 request on an open TLS socket; returns all the bytes until the server closes. */
async function tlsRequest(socket: TLSSocket, path = '/'): Promise<string> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  if (socket.destroyed) return '';
  socket.write(`GET ${path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n`);
  await closedWithin(socket, 5000, 'HTTPS response');
  return Buffer.concat(chunks).toString('latin1');
}

/** The first bytes of a real ClientHello for `servername` (captured from node's own client). */
async function captureClientHello(): Promise<Buffer> {
  const { createServer } = await import('node:net');
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  const client = tlsConnect({ host: '127.0.0.1', port, servername: 'a.test', rejectUnauthorized: false });
  client.on('error', () => {});
  const [socket] = (await once(server, 'connection')) as [Socket];
  const [hello] = (await once(socket, 'data')) as [Buffer];
  socket.destroy();
  client.destroy();
  server.close();
  return hello;
}

describe('TLS front conformance', () => {
  const dir = certDir();
  const a = makeCert(dir, ['DNS:a.test', 'DNS:*.wild.test']);
  const b = makeCert(dir, ['DNS:b.test']);
  // The reloaded certificate's files: a copy of `b`, broken during a test.
  const live: CertFiles = { cert: `${dir}/live.pem`, key: `${dir}/live.key` };
  copyFileSync(b.cert, live.cert);
  copyFileSync(b.key, live.key);
  const ca = makeCa(dir, 'client-ca');
  const otherCa = makeCa(dir, 'other-ca');
  const clientOk = makeCert(dir, ['DNS:billing'], { ca, file: 'client-ok', subject: '/O=Acme/CN=billing' });
  const clientOther = makeCert(dir, ['DNS:billing'], {
    ca: otherCa,
    file: 'client-other',
    subject: '/O=Acme/CN=billing',
  });
  const clientExpired = makeExpiredCert(dir, ca);

  let echo: TestServer;
  let p: PorticoProcess;

  before(async () => {
    echo = await startEchoUpstream('echo');
    p = await startPortico(`
listeners:
  - name: secure
    protocol: https
    address: 127.0.0.1:0
    limits: { headersTimeout: 1s }
    tls:
      certificates:
        - { cert: ${a.cert}, key: ${a.key} }
        - { cert: ${live.cert}, key: ${live.key} }
  - name: h1only
    protocol: https
    address: 127.0.0.1:0
    http2: false
    tls: { certificates: [ { cert: ${a.cert}, key: ${a.key} } ] }
  - name: mtls
    protocol: https
    address: 127.0.0.1:0
    tls:
      certificates: [ { cert: ${a.cert}, key: ${a.key} } ]
      clientAuth: { ca: ${ca.cert} }
upstreams: [ { name: echo, targets: [ { url: ${echo.url} } ] } ]
consumers: [ { name: billing-service, mtls: { subject: "CN=billing,O=Acme" } } ]
policies: { cert: { type: mtls-auth } }
routes:
  - { name: who, match: { path: /who }, policies: [cert], upstream: echo }
  - { name: all, match: { path: /* }, upstream: echo }
`);
  });

  after(async () => {
    await p?.stop();
    await echo?.close();
  });

  it('closes a plain HTTP request sent to the HTTPS port at once, and keeps serving HTTPS', async () => {
    for (const listener of ['secure', 'h1only']) {
      // OpenSSL fails the handshake on the first record: no answer, a prompt close (well under any timeout).
      const raw = await rawExchange(p.port(listener), 'GET / HTTP/1.1\r\nHost: a.test\r\n\r\n', 5000);
      assert.equal(raw, '');
    }
    const hs = await handshake(p.port('secure'), { servername: 'a.test', ALPNProtocols: ['http/1.1'] });
    assert.ok(hs.ok);
    assert.equal(statusOf(await tlsRequest(hs.socket)), 200);
  });

  it('closes handshakes that never finish within the headers timeout; they do not stop other clients', async () => {
    const port = p.port('secure');
    const hello = await captureClientHello();
    const stalled: Socket[] = [];
    const open = (first?: Buffer): Socket => {
      const s = netConnect(port, '127.0.0.1');
      s.on('error', () => {});
      s.resume();
      if (first !== undefined) s.write(first);
      stalled.push(s);
      return s;
    };
    // Nothing at all; half a ClientHello; a record header whose body never comes; an SSLv2-style header.
    const silent = open();
    const half = open(hello.subarray(0, Math.floor(hello.length / 2)));
    const header = open(hello.subarray(0, 5));
    const sslv2 = open(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02]));
    for (let i = 0; i < 40; i++) open(hello.subarray(0, 10));
    // Real clients are served meanwhile.
    for (let i = 0; i < 3; i++) {
      const hs = await handshake(port, { servername: 'a.test', ALPNProtocols: ['http/1.1'] });
      assert.ok(hs.ok);
      assert.equal(statusOf(await tlsRequest(hs.socket)), 200);
    }
    // headersTimeout is 1s: the first byte within it, the handshake within it after that.
    await closedWithin(silent, 5000, 'a silent connection');
    await closedWithin(half, 5000, 'half a ClientHello');
    await closedWithin(header, 5000, 'a TLS record header alone');
    await closedWithin(sslv2, 5000, 'an SSLv2 hello header');
    await Promise.all(stalled.map((s) => closedWithin(s, 5000, 'stalled handshakes')));
    await p.waitFor((l) => l.msg === 'client error' && l.code === 'tls_handshake_timeout');
  });

  it('accepts TLS 1.2 and 1.3, refuses 1.0, 1.1 and suites without forward secrecy or AEAD', async () => {
    const port = p.port('h1only');
    for (const v of ['TLSv1.2', 'TLSv1.3'] as const) {
      const hs = await handshake(port, { minVersion: v, maxVersion: v, servername: 'a.test' });
      assert.ok(hs.ok, v);
      assert.equal(hs.socket.getProtocol(), v);
      hs.socket.destroy();
    }
    for (const v of ['TLSv1', 'TLSv1.1'] as const) {
      const hs = await handshake(port, { minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0' });
      assert.equal(hs.ok, false, v);
    }
    for (const cipher of ['AES128-SHA', 'AES256-GCM-SHA384', 'ECDHE-ECDSA-AES128-SHA', 'ECDHE-ECDSA-AES128-SHA256']) {
      const out = await sClient(port, ['-servername', 'a.test', '-tls1_2', '-cipher', cipher]);
      assert.match(out, /Cipher is \(NONE\)|handshake failure|no cipher/, cipher);
    }
    assert.match(
      await sClient(port, ['-servername', 'a.test', '-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']),
      /Cipher is ECDHE-ECDSA-AES128-GCM-SHA256/,
    );
  });

  it('refuses client-initiated TLS 1.2 renegotiation', async () => {
    const hs = await handshake(p.port('h1only'), { maxVersion: 'TLSv1.2', servername: 'a.test' });
    assert.ok(hs.ok);
    const socket = hs.socket;
    socket.on('error', () => {});
    socket.resume();
    const outcome = await within(
      new Promise<string>((resolve) => {
        const started = socket.renegotiate({ rejectUnauthorized: false }, (err) =>
          resolve(err ? 'refused' : 'renegotiated'),
        );
        if (!started) resolve('refused');
        socket.once('close', () => resolve('refused'));
      }),
      5000,
      'renegotiation',
    );
    assert.equal(outcome, 'refused');
    socket.destroy();
  });

  it('SNI: trailing dot and case do not matter; IP literals, unknown names, two labels under a wildcard get the default', async () => {
    const port = p.port('secure');
    const cn = async (servername?: string): Promise<string> => {
      const hs = await handshake(port, { servername, ALPNProtocols: ['http/1.1'] });
      assert.ok(hs.ok, String(servername));
      hs.socket.destroy();
      return hs.cn;
    };
    assert.equal(await cn('b.test'), 'b.test');
    assert.equal(await cn('B.TEST'), 'b.test');
    assert.equal(await cn('b.test.'), 'b.test');
    assert.equal(await cn('X.Wild.Test'), 'a.test');
    // The wildcard covers one label only: the default certificate (also a.test here) is what these get.
    assert.equal(await cn('x.y.wild.test'), 'a.test');
    assert.equal(await cn('wild.test'), 'a.test');
    assert.equal(await cn('unknown.test'), 'a.test');
    assert.equal(await cn(undefined), 'a.test');
    // openssl sends an IP literal as SNI when told to (RFC 6066 forbids it; node's client never does).
    const out = await sClient(port, ['-servername', '127.0.0.1']);
    assert.match(out, /subject=CN ?= ?a\.test/);
  });

  it('ALPN: http/1.1, h2 or none are served; only unknown protocols gets no_application_protocol (RFC 7301)', async () => {
    const port = p.port('secure');
    const cases: Array<[string[] | undefined, string | false]> = [
      [['http/1.1'], 'http/1.1'],
      [['h2'], 'h2'],
      [undefined, false],
      [['foo', 'http/1.1'], 'http/1.1'],
    ];
    for (const [offer, expected] of cases) {
      const hs = await handshake(port, { servername: 'a.test', ALPNProtocols: offer });
      assert.ok(hs.ok, JSON.stringify(offer));
      assert.equal(hs.socket.alpnProtocol, expected);
      if (expected !== 'h2') assert.equal(statusOf(await tlsRequest(hs.socket)), 200);
      hs.socket.destroy();
    }
    const refused = await handshake(port, { servername: 'a.test', ALPNProtocols: ['foo'] });
    assert.deepEqual(refused, { ok: false, code: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' });
    // http2: false offers http/1.1 only.
    const h1 = await handshake(p.port('h1only'), { ALPNProtocols: ['h2', 'http/1.1'] });
    assert.ok(h1.ok);
    assert.equal(h1.socket.alpnProtocol, 'http/1.1');
    h1.socket.destroy();
    const h2only = await handshake(p.port('h1only'), { ALPNProtocols: ['h2'] });
    assert.deepEqual(h2only, { ok: false, code: 'ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL' });
  });

  it('mTLS: no certificate fails the handshake; another CA or an expired one is closed unanswered; h2 carries the identity', async () => {
    const port = p.port('mtls');
    const withCert = (c?: CertFiles): ConnectionOptions =>
      c === undefined ? {} : { cert: readFileSync(c.cert), key: readFileSync(c.key) };
    const none = await handshake(port, { ALPNProtocols: ['http/1.1'] });
    // TLS 1.3: the client may finish its side first; either way nothing is answered.
    assert.equal(none.ok ? await tlsRequest(none.socket) : '', '');
    for (const c of [clientOther, clientExpired]) {
      for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
        const hs = await handshake(port, { ALPNProtocols: ['http/1.1'], maxVersion, ...withCert(c) });
        // TLS 1.2: the handshake fails; TLS 1.3: the client finishes first, then the connection closes.
        if (hs.ok) assert.equal(await tlsRequest(hs.socket), '', `${c.cert} ${maxVersion}`);
      }
    }
    const ok = await handshake(port, { ALPNProtocols: ['http/1.1'], ...withCert(clientOk) });
    assert.ok(ok.ok);
    assert.match(await tlsRequest(ok.socket, '/who'), /"x-consumer":"billing-service"/);
    // Over HTTP/2, the route's mtls-auth policy sees the certificate of the session.
    const session = http2Connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false, ...withCert(clientOk) });
    session.on('error', () => {});
    const body = await within(
      new Promise<string>((resolve, reject) => {
        const stream = session.request({ ':path': '/who' });
        let text = '';
        stream.setEncoding('utf8');
        stream.on('data', (c: string) => {
          text += c;
        });
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      }),
      5000,
      'h2 request with a client certificate',
    );
    session.close();
    assert.equal((JSON.parse(body) as { headers: Record<string, string> }).headers['x-consumer'], 'billing-service');
  });

  it('a broken certificate pair on disk is logged and the old one kept; the process stays up', async () => {
    const port = p.port('secure');
    const before = p.lines.length;
    // b's certificate with a's key: the pair does not match.
    copyFileSync(a.key, live.key);
    await p.waitFor((l) => p.lines.indexOf(l) >= before && String(l.msg).startsWith('certificate reload failed'));
    const hs = await handshake(port, { servername: 'b.test', ALPNProtocols: ['http/1.1'] });
    assert.ok(hs.ok);
    assert.equal(hs.cn, 'b.test');
    assert.equal(statusOf(await tlsRequest(hs.socket)), 200);
    const mark = p.lines.length;
    copyFileSync(b.key, live.key);
    await p.waitFor((l) => p.lines.indexOf(l) >= mark && l.msg === 'certificates reloaded');
    assert.equal(p.child.exitCode, null);
  });

  it('clients that reset, half-close, send alerts or forged records after the handshake leave nothing open', async () => {
    const port = p.port('secure');
    // Portico's side of the connections to this port that are open (ESTABLISHED) or that the client closed and
    // Portico did not (CLOSE_WAIT), from the kernel's table (Linux).
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    const openOnPort = (): number =>
      readFileSync('/proc/net/tcp', 'utf8')
        .split('\n')
        .map((row) => row.trim().split(/\s+/))
        .filter((f) => f[1]?.endsWith(hex) === true && (f[3] === '01' || f[3] === '08')).length;
    const baseline = openOnPort();
    const underTls = async (alpn: string): Promise<{ raw: Socket; tls: TLSSocket }> => {
      const raw = netConnect(port, '127.0.0.1');
      raw.on('error', () => {});
      const tls = tlsConnect({ socket: raw, rejectUnauthorized: false, ALPNProtocols: [alpn] });
      tls.on('error', () => {});
      await within(once(tls, 'secureConnect'), 5000, 'handshake');
      return { raw, tls };
    };
    const jobs: Promise<void>[] = [];
    for (const alpn of ['http/1.1', 'h2']) {
      for (let i = 0; i < 5; i++) {
        jobs.push(underTls(alpn).then(({ raw }) => void raw.resetAndDestroy()));
        jobs.push(
          underTls(alpn).then(({ raw }) => {
            raw.write(Buffer.from([0x17, 0x03, 0x03, 0x00, 0x10, ...Buffer.alloc(16, 0x41)]));
            return closedWithin(raw, 5000, 'a forged record');
          }),
        );
        jobs.push(
          underTls(alpn).then(({ raw }) => {
            raw.write(Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]));
            return closedWithin(raw, 5000, 'a plain-text fatal alert');
          }),
        );
        jobs.push(
          underTls(alpn).then(({ tls }) => {
            tls.resume();
            if (alpn === 'h2') tls.end();
            else tls.end('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n');
            return closedWithin(tls, 5000, 'a half-closed connection');
          }),
        );
      }
    }
    await Promise.all(jobs);
    let now = openOnPort();
    for (let i = 0; i < 50 && now > baseline; i++) {
      await new Promise((r) => setTimeout(r, 100));
      now = openOnPort();
    }
    assert.ok(now <= baseline, `connections still open: ${now} now, ${baseline} before`);
    assert.equal(p.child.exitCode, null);
    const hs = await handshake(port, { ALPNProtocols: ['http/1.1'] });
    assert.ok(hs.ok);
    assert.equal(statusOf(await tlsRequest(hs.socket)), 200);
  });
});
