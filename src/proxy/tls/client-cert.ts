/**
 * @module The verified client certificate of a TLS connection (mTLS), as a subject string for policies:
 * RFC 4514 order (most specific first), e.g. `CN=billing,O=Acme`. Computed once per connection.
 */
import type { TLSSocket } from 'node:tls';

const kSubject = Symbol('portico.clientSubject');

type Cached = TLSSocket & { [kSubject]?: string | null };

/**
 * The subject of the client certificate `socket` verified, or undefined when there is none or it did not
 * verify (`clientAuth.required: false` lets such clients in). Not a TLS socket → undefined.
 */
export function certificateSubjectOf(socket: unknown): string | undefined {
  const s = socket as Cached | null | undefined;
  if (s == null || s.encrypted !== true) return undefined;
  const cached = s[kSubject];
  if (cached !== undefined) return cached ?? undefined;
  let subject: string | null = null;
  if (s.authorized) {
    const x509 = s.getPeerX509Certificate();
    if (x509 !== undefined) subject = x509.subject.split('\n').reverse().join(',');
  }
  s[kSubject] = subject;
  return subject ?? undefined;
}
