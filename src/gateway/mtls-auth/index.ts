/**
 * @module `mtls-auth`: identifies the consumer by the subject of the client certificate the listener
 * verified (`ex.client.certificateSubject`), matched against the consumers' `mtls.subject`.
 *
 * ```yaml
 * cert: { type: mtls-auth }
 * ```
 * No verified certificate → 401 GW_AUTH_MISSING; a subject no consumer claims → 403 GW_FORBIDDEN.
 */
import { z } from 'zod';
import { replyVerdict } from '../replies.ts';
import { zodParser } from '../schema.ts';
import { CONTINUE, type Exchange, type PolicyFactory, type Verdict } from '../types.ts';

const options = z.strictObject({});
export type MtlsAuthOptions = z.output<typeof options>;

export const factory: PolicyFactory<MtlsAuthOptions> = {
  type: 'mtls-auth',
  parse: zodParser(options),
  create(name, _c, deps) {
    const missing = replyVerdict('GW_AUTH_MISSING', 'mtls_no_certificate');
    const unknown = replyVerdict('GW_FORBIDDEN', 'mtls_unknown_subject');
    return {
      name,
      type: 'mtls-auth',
      authenticates: true,
      onRequest(ex: Exchange): Verdict {
        const subject = ex.client.certificateSubject;
        if (subject === undefined) return missing;
        const consumer = deps.consumers.byCertificateSubject?.(subject);
        if (consumer === undefined) return unknown;
        ex.consumer = consumer;
        return CONTINUE;
      },
    };
  },
};
