/**
 * @module Test certificates made with the openssl command: a CA, and leaf certificates signed by it or
 * self-signed, with the DNS / IP names given. EC P-256 keys, valid one day. Used by the TLS, HTTP/2 and
 * WebSocket end-to-end tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

export function certDir(): string {
  return mkdtempSync(join(tmpdir(), 'portico-certs-'));
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA certificate and key. */
export function makeCa(dir: string, name: string): CertFiles {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    key,
    '-out',
    cert,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

/**
 * A leaf certificate for `names` (`DNS:a.test`, `IP:127.0.0.1`; the first DNS name is also the CN), signed by
 * `ca` or self-signed. `file` names the output files (default: the first name).
 */
export function makeCert(
  dir: string,
  names: string[],
  options: { ca?: CertFiles; file?: string; subject?: string } = {},
): CertFiles {
  const base = options.file ?? names[0]!.replace(/[^A-Za-z0-9.-]/g, '_');
  const cert = join(dir, `${base}.pem`);
  const key = join(dir, `${base}.key`);
  const cn = names.find((n) => n.startsWith('DNS:'))?.slice(4) ?? 'localhost';
  const subject = options.subject ?? `/CN=${cn}`;
  const san = `subjectAltName=${names.join(',')}`;
  if (options.ca === undefined) {
    openssl([
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      subject,
      '-keyout',
      key,
      '-out',
      cert,
      '-addext',
      san,
    ]);
    return { cert, key };
  }
  const csr = join(dir, `${base}.csr`);
  const ext = join(dir, `${base}.ext`);
  writeFileSync(ext, `${san}\nbasicConstraints=CA:FALSE\n`);
  openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    subject,
    '-keyout',
    key,
    '-out',
    csr,
  ]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    options.ca.cert,
    '-CAkey',
    options.ca.key,
    '-CAcreateserial',
    '-days',
    '1',
    '-out',
    cert,
    '-extfile',
    ext,
  ]);
  return { cert, key };
}
