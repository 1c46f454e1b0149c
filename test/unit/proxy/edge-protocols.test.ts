/** Pure parts of the protocol edge: h2c preface detection, SNI map, redirect Location, HTTP/2 header mapping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { http1HeadersFromH2 } from '../../../src/proxy/h2-exchange.ts';
import { classifyPreface, H2_PREFACE } from '../../../src/proxy/h2c.ts';
import { hstsValue, httpsLocation } from '../../../src/proxy/redirect.ts';
import { SniMap } from '../../../src/proxy/tls/sni-map.ts';

describe('h2c preface', () => {
  it('decides as soon as it can', () => {
    assert.equal(classifyPreface(Buffer.from('GET / HTTP/1.1\r\n')), 'http1');
    assert.equal(classifyPreface(Buffer.from('POST')), 'http1');
    assert.equal(classifyPreface(Buffer.from('PRI * HT')), 'undecided');
    assert.equal(classifyPreface(H2_PREFACE), 'h2');
    assert.equal(classifyPreface(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0])])), 'h2');
  });
});

describe('SniMap', () => {
  it('matches exact, then one-label wildcard, then the default', () => {
    const m = new SniMap('default');
    m.add('a.test', 'a');
    m.add('*.wild.test', 'wild');
    m.add('A.test', 'ignored: first wins');
    assert.equal(m.match('a.test'), 'a');
    assert.equal(m.match('A.TEST'), 'a');
    assert.equal(m.match('x.wild.test'), 'wild');
    assert.equal(m.match('y.x.wild.test'), 'default');
    assert.equal(m.match('wild.test'), 'default');
    assert.equal(m.match(undefined), 'default');
  });
});

describe('redirect and HSTS', () => {
  it('builds Location from a safe Host only', () => {
    assert.equal(httpsLocation('shop.test:8080', '/a?b', 443), 'https://shop.test/a?b');
    assert.equal(httpsLocation('shop.test', '/', 8443), 'https://shop.test:8443/');
    assert.equal(httpsLocation('[::1]:80', '/x', 443), 'https://[::1]/x');
    assert.equal(httpsLocation('evil.test/x', '/', 443), undefined);
    assert.equal(httpsLocation('a@b.test', '/', 443), undefined);
    assert.equal(httpsLocation(undefined, '/', 443), undefined);
    // Absolute-form targets: their authority wins over Host (RFC 9112 §3.2.2); path and query are kept.
    assert.equal(httpsLocation('other.test', 'http://shop.test/a/b?c=d', 443), 'https://shop.test/a/b?c=d');
    assert.equal(httpsLocation('other.test', 'http://shop.test:8080?q', 8443), 'https://shop.test:8443/?q');
    assert.equal(httpsLocation(undefined, 'HTTP://shop.test', 443), 'https://shop.test/');
    assert.equal(httpsLocation('shop.test', 'http://a@evil.test/', 443), undefined);
    assert.equal(httpsLocation('shop.test', '*', 443), 'https://shop.test/');
  });

  it('formats Strict-Transport-Security', () => {
    assert.equal(
      hstsValue({ maxAge: 31_536_000_000, includeSubDomains: true, preload: true }),
      'max-age=31536000; includeSubDomains; preload',
    );
  });
});

describe('HTTP/2 headers for the HTTP/1 path', () => {
  it('drops pseudo-headers, takes host from :authority, marks unannounced bodies', () => {
    const h = http1HeadersFromH2(
      { ':method': 'POST', ':path': '/x', ':authority': 'a.test', ':scheme': 'https', host: 'other', accept: '*/*' },
      false,
    );
    assert.deepEqual(h, { host: 'a.test', accept: '*/*', 'transfer-encoding': 'chunked' });
    const g = http1HeadersFromH2({ ':method': 'GET', ':path': '/', ':authority': 'a.test' }, true);
    assert.deepEqual(g, { host: 'a.test' });
    const l = http1HeadersFromH2({ ':method': 'PUT', ':path': '/', 'content-length': '3' }, false);
    assert.deepEqual(l, { 'content-length': '3' });
  });
});
