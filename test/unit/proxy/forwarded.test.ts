/** Forwarding headers: RFC 7239 syntax of Forwarded, X-Forwarded-* replaced or extended by trust. */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { setForwardingHeaders } from '../../../src/proxy/forwarded.ts';

function forwarded(peer: string, incoming: IncomingHttpHeaders = {}, peerTrusted = false, host = 'a.example') {
  const out: IncomingHttpHeaders = { ...incoming };
  setForwardingHeaders(out, incoming, { peer, peerTrusted, proto: 'https', host });
  return out;
}

describe('setForwardingHeaders', () => {
  it('IPv4 as a token, IPv6 quoted and bracketed, an unknown peer as `unknown` (RFC 7239 §6)', () => {
    assert.equal(forwarded('192.0.2.1').forwarded, 'for=192.0.2.1;proto=https;host="a.example"');
    assert.equal(forwarded('2001:db8::1').forwarded, 'for="[2001:db8::1]";proto=https;host="a.example"');
    assert.equal(forwarded('').forwarded, 'for=unknown;proto=https;host="a.example"');
  });
  it('replaces what an untrusted peer sent, extends what a trusted one sent', () => {
    const sent = { forwarded: 'for=_hidden', 'x-forwarded-for': '198.51.100.9', 'x-forwarded-proto': 'http' };
    const untrusted = forwarded('192.0.2.1', sent);
    assert.equal(untrusted.forwarded, 'for=192.0.2.1;proto=https;host="a.example"');
    assert.equal(untrusted['x-forwarded-for'], '192.0.2.1');
    assert.equal(untrusted['x-forwarded-proto'], 'https');
    const trusted = forwarded('192.0.2.1', sent, true);
    assert.equal(trusted.forwarded, 'for=_hidden, for=192.0.2.1;proto=https;host="a.example"');
    assert.equal(trusted['x-forwarded-for'], '198.51.100.9, 192.0.2.1');
    assert.equal(trusted['x-forwarded-proto'], 'http');
  });
  it('an IPv6 Host stays one quoted-string', () => {
    assert.equal(forwarded('::1', {}, false, '[::1]:8080').forwarded, 'for="[::1]";proto=https;host="[::1]:8080"');
  });
});
