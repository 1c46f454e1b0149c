/**
 * End to end: the subject of a verified client certificate identifies the consumer (mtls-auth policy), and the
 * identity reaches the upstream in x-consumer; a client without a certificate is refused by the policy.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { describe, it } from 'node:test';
import { startEchoUpstream } from '../helpers/http.ts';
import { startPortico } from '../helpers/portico.ts';
import { type CertFiles, certDir, makeCa, makeCert } from '../helpers/tls-certs.ts';

function get(port: number, path: string, cert?: CertFiles): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        rejectUnauthorized: false,
        agent: false,
        cert: cert ? readFileSync(cert.cert) : undefined,
        key: cert ? readFileSync(cert.key) : undefined,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('mTLS identity', () => {
  it('maps a verified certificate subject to a consumer', async (t) => {
    const dir = certDir();
    const server = makeCert(dir, ['DNS:api.test', 'IP:127.0.0.1']);
    const ca = makeCa(dir, 'clients');
    const billing = makeCert(dir, ['DNS:billing'], { ca, file: 'billing', subject: '/O=Acme/CN=billing' });
    const echo = await startEchoUpstream();
    const p = await startPortico(`
listeners:
  - name: secure
    protocol: https
    address: 127.0.0.1:0
    tls:
      certificates: [ { cert: ${server.cert}, key: ${server.key} } ]
      clientAuth: { ca: ${ca.cert}, required: false }
upstreams: [ { name: echo, targets: [ { url: ${echo.url} } ] } ]
consumers: [ { name: billing-service, mtls: { subject: "CN=billing,O=Acme" } } ]
policies: { cert: { type: mtls-auth } }
routes: [ { name: who, match: { path: /who }, policies: [cert], upstream: echo } ]
`);
    t.after(async () => {
      await p.stop();
      await echo.close();
    });
    const port = p.port('secure');
    const ok = await get(port, '/who', billing);
    assert.equal(ok.status, 200, ok.body);
    assert.equal((JSON.parse(ok.body) as { headers: Record<string, string> }).headers['x-consumer'], 'billing-service');
    const anonymous = await get(port, '/who');
    assert.equal(anonymous.status, 401);
  });
});
