/**
 * @module TLS settings of an upstream (`https://` targets), resolved once per config generation into the
 * `connect` options of undici's Pool: CA, server name, client certificate, verification.
 */
import { createHash } from 'node:crypto';
import type { UpstreamConfig } from '../../config/schema.ts';
import { readPem } from './pem.ts';

export interface UpstreamTls {
  /** Identity of these settings, so pools with different TLS settings are never shared. */
  readonly id: string;
  readonly ca: string | undefined;
  readonly servername: string | undefined;
  readonly cert: string | undefined;
  readonly key: string | undefined;
  readonly rejectUnauthorized: boolean;
}

/** Reads the PEM files an upstream's `tls` names (throws on a missing file); undefined when it has none. */
export function resolveUpstreamTls(config: UpstreamConfig['tls'], baseDir?: string): UpstreamTls | undefined {
  if (config === undefined) return undefined;
  const ca = config.ca === undefined ? undefined : readPem(config.ca, baseDir, 'upstream CA').pem;
  const cert = config.cert === undefined ? undefined : readPem(config.cert, baseDir, 'upstream client certificate').pem;
  const key = config.key === undefined ? undefined : readPem(config.key, baseDir, 'upstream client key').pem;
  const rejectUnauthorized = !config.insecureSkipVerify;
  const id = createHash('sha256')
    .update(JSON.stringify([ca, config.serverName, cert, key, rejectUnauthorized]))
    .digest('base64url')
    .slice(0, 16);
  return { id, ca, servername: config.serverName, cert, key, rejectUnauthorized };
}
