/**
 * End to end: `https` listeners — certificates chosen by SNI (exact, wildcard, default), certificate files
 * reloaded without dropping live connections, mTLS, HTTPS upstreams verified against a CA (502 when it does
 * not match), HTTP→HTTPS redirects and HSTS.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, readFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import { fetchRaw, startEchoUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { type CertFiles, certDir, makeCa, makeCert } from '../helpers/tls-certs.ts';

const run = promisify(execFile);

/** The CN of the certificate `port` presents for `servername` (undefined: no SNI). */
async function presentedCn(port: number, servername?: string): Promise<string> {
  const socket = tlsConnect({
    host: '127.0.0.1',
    port,
    servername,
    rejectUnauthorized: false,
    ALPNProtocols: ['http/1.1'],
  });
  await once(socket, 'secureConnect');
  const cn = socket.getPeerCertificate().subject.CN as string;
  socket.destroy();
  return cn;
}

/** One request over HTTPS with node's https client (no verification: the certs are self-signed). */
function httpsGet(
  port: number,
  path: string,
  options: { servername?: string; cert?: CertFiles; host?: string; address?: string } = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    import('node:https').then(({ request }) => {
      const req = request(
        {
          host: options.address ?? '127.0.0.1',
          port,
          path,
          servername: options.servername,
          rejectUnauthorized: false,
          agent: false,
          headers: options.host ? { host: options.host } : undefined,
          cert: options.cert ? readFileSync(options.cert.cert) : undefined,
          key: options.cert ? readFileSync(options.cert.key) : undefined,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        },
      );
      req.on('error', reject);
      req.end();
    }, reject);
  });
}

describe('https listener', () => {
  const dir = certDir();
  const a = makeCert(dir, ['DNS:a.test', 'DNS:*.wild.test']);
  const b = makeCert(dir, ['DNS:b.test']);
  // The reloaded certificate's files: start as a copy of `b`, replaced during the test.
  const live: CertFiles = { cert: `${dir}/live.pem`, key: `${dir}/live.key` };
  copyFileSync(b.cert, live.cert);
  copyFileSync(b.key, live.key);
  const ca = makeCa(dir, 'client-ca');
  const otherCa = makeCa(dir, 'other-ca');
  const clientOk = makeCert(dir, ['DNS:billing'], { ca, file: 'client-ok', subject: '/O=Acme/CN=billing' });
  const clientBad = makeCert(dir, ['DNS:billing'], { ca: otherCa, file: 'client-bad' });
  const upstreamCa = makeCa(dir, 'upstream-ca');
  const upstreamCert = makeCert(dir, ['DNS:backend.test', 'IP:127.0.0.1'], { ca: upstreamCa, file: 'backend' });

  let echo: TestServer;
  let tlsBackend: ReturnType<typeof createHttpsServer>;
  let tlsBackendPort: number;
  let p: PorticoProcess;

  before(async () => {
    echo = await startEchoUpstream('echo');
    tlsBackend = createHttpsServer(
      { cert: readFileSync(upstreamCert.cert), key: readFileSync(upstreamCert.key) },
      (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`tls backend ${req.url}`);
      },
    );
    tlsBackend.listen(0, '127.0.0.1');
    await once(tlsBackend, 'listening');
    tlsBackendPort = (tlsBackend.address() as AddressInfo).port;
    p = await startPortico(`
listeners:
  - name: secure
    protocol: https
    address: 127.0.0.1:0
    hsts: { maxAge: 1d, includeSubDomains: true }
    tls:
      certificates:
        - { cert: ${a.cert}, key: ${a.key} }
        - { cert: ${live.cert}, key: ${live.key} }
  - name: mtls
    protocol: https
    address: 127.0.0.2:0
    tls:
      certificates: [ { cert: ${a.cert}, key: ${a.key} } ]
      clientAuth: { ca: ${ca.cert} }
  - { name: plain, protocol: http, address: 127.0.0.3:0, redirectToHttps: { listener: secure } }
  - { name: web, protocol: http, address: 127.0.0.4:0 }
upstreams:
  - { name: echo, targets: [ { url: ${echo.url} } ] }
  - name: backend
    tls: { ca: ${upstreamCa.cert}, serverName: backend.test }
    targets: [ { url: https://127.0.0.1:${tlsBackendPort} } ]
  - name: wrong-ca
    tls: { ca: ${ca.cert} }
    retries: { attempts: 1 }
    targets: [ { url: https://127.0.0.1:${tlsBackendPort} } ]
routes:
  - { name: backend, match: { path: /backend/* }, upstream: backend }
  - { name: wrong-ca, match: { path: /wrong-ca/* }, upstream: wrong-ca }
  - { name: route-hsts, match: { path: /strict/* }, hsts: { maxAge: 10s, preload: true }, upstream: echo }
  - { name: all, match: { path: /* }, upstream: echo }
`);
  });

  after(async () => {
    await p?.stop();
    await echo?.close();
    tlsBackend?.closeAllConnections();
    tlsBackend?.close();
  });

  it('picks the certificate by SNI: exact, wildcard, and the first one by default', async () => {
    const port = p.port('secure');
    assert.equal(await presentedCn(port, 'b.test'), 'b.test');
    assert.equal(await presentedCn(port, 'a.test'), 'a.test');
    assert.equal(await presentedCn(port, 'x.wild.test'), 'a.test');
    assert.equal(await presentedCn(port, 'unknown.test'), 'a.test');
    assert.equal(await presentedCn(port), 'a.test');
    // curl, by name through --resolve.
    const { stderr } = await run('curl', ['-skv', '--resolve', `b.test:${port}:127.0.0.1`, `https://b.test:${port}/`]);
    assert.match(stderr, /subject: CN=b\.test/);
  });

  it('proxies HTTPS requests with x-forwarded-proto https and HSTS', async () => {
    const res = await httpsGet(p.port('secure'), '/hello?x=1', { servername: 'a.test' });
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as { url: string; headers: Record<string, string> };
    assert.equal(seen.url, '/hello?x=1');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(res.headers['strict-transport-security'], 'max-age=86400; includeSubDomains');
  });

  it('refuses TLS 1.1', async () => {
    const socket = tlsConnect({
      host: '127.0.0.1',
      port: p.port('secure'),
      maxVersion: 'TLSv1.1',
      minVersion: 'TLSv1',
      rejectUnauthorized: false,
    });
    const [err] = (await once(socket, 'error')) as [Error & { code?: string }];
    assert.ok(err.code !== undefined);
  });

  it('reloads certificate files without a restart, keeping live connections', async () => {
    const port = p.port('secure');
    const session = http2Connect(`https://127.0.0.1:${port}`, { servername: 'b.test', rejectUnauthorized: false });
    session.on('error', () => {});
    const get = (path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ':path': path });
        stream.on('response', (h) => resolve(Number(h[':status'])));
        stream.on('error', reject);
        stream.resume();
      });
    assert.equal(await get('/before'), 200);
    const before = p.lines.length;
    const renewed = makeCert(dir, ['DNS:b.test', 'DNS:renewed.test'], { file: 'renewed' });
    copyFileSync(renewed.key, live.key);
    copyFileSync(renewed.cert, live.cert);
    await p.waitFor((l) => p.lines.indexOf(l) >= before && l.msg === 'certificates reloaded');
    assert.equal(await presentedCn(port, 'renewed.test'), 'b.test');
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'b.test', rejectUnauthorized: false });
    await once(socket, 'secureConnect');
    assert.equal(
      socket.getPeerCertificate().fingerprint256,
      new (await import('node:crypto')).X509Certificate(readFileSync(renewed.cert)).fingerprint256,
    );
    socket.destroy();
    // The connection made before the change still works.
    assert.equal(await get('/after'), 200);
    session.close();
  });

  it('mTLS: accepts a client certificate from the CA, refuses none or another CA', async () => {
    const port = p.port('mtls');
    const address = '127.0.0.2';
    const ok = await httpsGet(port, '/m', { cert: clientOk, address });
    assert.equal(ok.status, 200);
    await assert.rejects(httpsGet(port, '/m', { address }));
    await assert.rejects(httpsGet(port, '/m', { cert: clientBad, address }));
  });

  it('verifies HTTPS upstreams against the configured CA; a CA that does not match is a 502', async () => {
    const good = await fetchRaw(`${`http://127.0.0.4:${p.port('web')}`}/backend/x`);
    assert.equal(good.status, 200);
    assert.equal(good.body, 'tls backend /backend/x');
    const bad = await fetchRaw(`${`http://127.0.0.4:${p.port('web')}`}/wrong-ca/x`);
    assert.equal(bad.status, 502);
    assert.equal((JSON.parse(bad.body) as { code: string }).code.startsWith('GW_UPSTREAM'), true);
  });

  it('redirects plain HTTP to https, keeping host, path and query', async () => {
    const res = await fetchRaw(`http://127.0.0.3:${p.port('plain')}/a/b?c=d`, { headers: { host: 'shop.test:8080' } });
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, `https://shop.test:${p.port('secure')}/a/b?c=d`);
    assert.equal(res.headers['strict-transport-security'], undefined);
    const acme = await fetchRaw(`http://127.0.0.3:${p.port('plain')}/.well-known/acme-challenge/tok`);
    assert.notEqual(acme.status, 308);
  });

  it('sends a route-level HSTS value on that route only', async () => {
    const res = await httpsGet(p.port('secure'), '/strict/x');
    assert.equal(res.headers['strict-transport-security'], 'max-age=10; preload');
    const plain = await fetchRaw(`${`http://127.0.0.4:${p.port('web')}`}/strict/x`);
    assert.equal(plain.headers['strict-transport-security'], undefined);
  });
});
