/**
 * @module Builds the TLS contexts of an `https` listener: one SecureContext per certificate, the names each
 * one serves (read from the certificate: DNS subjectAltNames, else the subject CN), and safe defaults.
 */
import { constants, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { readPem } from './pem.ts';
import { SniMap } from './sni-map.ts';

/** The `tls` block of a listener, as the schema gives it. */
export interface ListenerTlsConfig {
  readonly certificates: readonly { readonly cert: string; readonly key: string }[];
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  readonly clientAuth?: { readonly ca: string; readonly required: boolean } | undefined;
}

/**
 * TLS 1.2 suites with forward secrecy and AEAD only (Mozilla "intermediate"); TLS 1.3 suites are OpenSSL's
 * defaults, all of them safe. None is on HTTP/2's deny list (RFC 9113 Appendix A).
 */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/** One loaded certificate set: the SNI map, the default context's options, and the files it was read from. */
export interface LoadedCertificates {
  readonly contexts: SniMap<SecureContext>;
  /** Options of the default context (for `server.setSecureContext`). */
  readonly defaultOptions: SecureContextOptions;
  /** Files to watch (certificates, keys, client CA). */
  readonly files: readonly string[];
  /** Names served, per certificate (for logs and tests). */
  readonly names: readonly (readonly string[])[];
}

/** The names a certificate serves: DNS subjectAltNames, else its subject CN (RFC 6125 §6.4.4). */
export function certificateNames(pem: string): string[] {
  const x509 = new X509Certificate(pem);
  const names: string[] = [];
  const san = x509.subjectAltName;
  if (san !== undefined) {
    for (const entry of san.split(',')) {
      const e = entry.trim();
      if (e.startsWith('DNS:')) names.push(e.slice(4).toLowerCase());
    }
  }
  if (names.length === 0) {
    for (const line of x509.subject.split('\n')) {
      if (line.startsWith('CN=')) names.push(line.slice(3).toLowerCase());
    }
  }
  return names;
}

/**
 * Reads every certificate and key and builds their contexts. Throws with the file at fault (a missing
 * file, a key that does not match its certificate) so a start or reload fails whole.
 */
export function loadCertificates(config: ListenerTlsConfig, baseDir: string | undefined): LoadedCertificates {
  const files: string[] = [];
  const base: SecureContextOptions = {
    minVersion: config.minVersion,
    ciphers: CIPHERS,
    honorCipherOrder: true,
    // Client-initiated renegotiation (TLS 1.2) costs a handshake each time and serves no HTTP purpose: refused,
    // as nginx, HAProxy and Go do (Node alone would allow three per ten minutes).
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION,
  };
  if (config.clientAuth !== undefined) {
    const ca = readPem(config.clientAuth.ca, baseDir, 'client CA');
    if (ca.path !== undefined) files.push(ca.path);
    base.ca = ca.pem;
  }
  let defaultOptions: SecureContextOptions | undefined;
  let defaultContext: SecureContext | undefined;
  const entries: Array<{ names: string[]; context: SecureContext }> = [];
  for (const c of config.certificates) {
    const cert = readPem(c.cert, baseDir, 'certificate');
    const key = readPem(c.key, baseDir, 'key');
    if (cert.path !== undefined) files.push(cert.path);
    if (key.path !== undefined) files.push(key.path);
    const options: SecureContextOptions = { ...base, cert: cert.pem, key: key.pem };
    let context: SecureContext;
    try {
      context = createSecureContext(options);
    } catch (err) {
      throw new Error(`certificate ${cert.path ?? '(inline)'}: ${(err as Error).message}`);
    }
    const names = certificateNames(cert.pem);
    entries.push({ names, context });
    if (defaultOptions === undefined) {
      defaultOptions = options;
      defaultContext = context;
    }
  }
  const contexts = new SniMap<SecureContext>(defaultContext!);
  for (const e of entries) for (const n of e.names) contexts.add(n, e.context);
  return { contexts, defaultOptions: defaultOptions!, files, names: entries.map((e) => e.names) };
}
