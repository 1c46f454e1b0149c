/**
 * @module Config schema of the L4 parts of a listener (`protocol: tcp` and `protocol: tls`).
 *
 * `l4ListenerFields` is spread into the listener object of src/config/schema.ts; `checkL4Listener` is its
 * cross-field check (run from the listener's superRefine). Names of upstreams are checked with the other
 * references. Durations are parsed to milliseconds here, like everywhere in the config.
 */
import { z } from 'zod';
import { duration, name } from '../config/primitives.ts';

const cidr = z.string().meta({ description: 'An IPv4 or IPv6 address or CIDR block, e.g. 10.0.0.0/8' });

/** `api.example.com` or `*.example.com` (one label). */
const serverName = z
  .string()
  .regex(
    /^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/,
    'expected a DNS name such as api.example.com or *.example.com',
  )
  .meta({ description: 'A server name: exact, or *.example.com for any one label' });

export const proxyProtocol = z
  .strictObject({
    accept: z
      .strictObject({
        trusted: z.array(cidr).min(1).meta({ description: 'Peers that must send a PROXY header (v1 or v2)' }),
      })
      .optional()
      .meta({ description: 'Read the client address from a PROXY header sent by a trusted load balancer' }),
    send: z.enum(['v1', 'v2']).optional().meta({ description: 'Send a PROXY header of this version to every target' }),
  })
  .meta({ description: 'PROXY protocol (HAProxy) in and out; tcp and tls listeners' });

export const sniRoute = z.strictObject({
  names: z.array(serverName).min(1),
  upstream: name,
});

const certificate = z.strictObject({
  /** PEM chain; `file:path` or `${ENV}` references are resolved by the loader. */
  cert: z.string().min(1),
  key: z.string().min(1),
});

export const l4Tls = z
  .strictObject({
    mode: z
      .enum(['passthrough', 'terminate'])
      .default('passthrough')
      .meta({ description: 'passthrough: route by SNI without decrypting; terminate: decrypt here' }),
    certificates: z
      .array(certificate)
      .default([])
      .meta({ description: 'For terminate: the first is the default, the others are chosen by SNI' }),
  })
  .meta({ description: 'TLS for a tls listener' });

export const l4Timeouts = z
  .strictObject({
    connect: duration.optional().meta({ description: "Per target dial; default: the upstream's connect timeout" }),
    idle: duration.default(3_600_000).meta({ description: 'Silence both ways before closing (0 disables)' }),
    handshake: duration
      .default(10_000)
      .meta({ description: 'Time to receive a PROXY header / ClientHello or finish a TLS handshake' }),
  })
  .meta({ description: 'Timeouts of tcp and tls listeners' });

/** Fields to spread into the listener object (all optional, so http listeners are unaffected). */
export const l4ListenerFields = {
  proxyProtocol: proxyProtocol.optional(),
  /** tls listeners: route by server name; `upstream` is the default for unmatched names and no SNI. */
  sni: z.array(sniRoute).optional(),
  tls: l4Tls.optional(),
  timeouts: l4Timeouts.optional(),
};

/** The L4 view of a parsed listener (what from-config.ts reads). */
export interface L4ListenerConfig {
  readonly name: string;
  readonly protocol: 'http' | 'https' | 'tcp' | 'tls';
  readonly address: string;
  readonly upstream?: string | undefined;
  readonly limits: { readonly maxConnections?: number | undefined };
  readonly proxyProtocol?: z.output<typeof proxyProtocol> | undefined;
  readonly sni?: readonly z.output<typeof sniRoute>[] | undefined;
  /** Shared with https listeners, so `mode` may be absent (passthrough). */
  readonly tls?:
    | {
        readonly mode?: 'passthrough' | 'terminate' | undefined;
        readonly certificates: readonly { readonly cert: string; readonly key: string }[];
      }
    | undefined;
  readonly timeouts?: z.output<typeof l4Timeouts> | undefined;
}

interface IssueSink {
  addIssue(issue: { code: 'custom'; message: string; path: (string | number)[] }): void;
}

/** Cross-field rules for tcp/tls listeners; call from the listener's superRefine. */
export function checkL4Listener(l: L4ListenerConfig, ctx: IssueSink): void {
  const l4 = l.protocol === 'tcp' || l.protocol === 'tls';
  if (!l4) {
    for (const key of ['proxyProtocol', 'sni', 'timeouts'] as const) {
      if (l[key] !== undefined)
        ctx.addIssue({ code: 'custom', path: [key], message: `only for tcp and tls listeners` });
    }
    return;
  }
  if (l.protocol === 'tcp') {
    // A missing upstream is reported by the cross-reference checks (src/config/references.ts).
    if (l.sni !== undefined) ctx.addIssue({ code: 'custom', path: ['sni'], message: 'sni is for tls listeners' });
    if (l.tls !== undefined)
      ctx.addIssue({ code: 'custom', path: ['tls'], message: 'tls is for tls (and https) listeners' });
    return;
  }
  if (l.upstream === undefined && (l.sni === undefined || l.sni.length === 0)) {
    ctx.addIssue({ code: 'custom', path: ['sni'], message: 'a tls listener needs sni routes or a default upstream' });
  }
  if (l.tls?.mode === 'terminate' && l.tls.certificates.length === 0) {
    ctx.addIssue({ code: 'custom', path: ['tls', 'certificates'], message: 'tls terminate needs a certificate' });
  }
}
