/** @module Request ids: taken from the client when well-formed, otherwise generated. */
import { randomUUID } from 'node:crypto';

/** Accept ids a log line can hold safely: 1–128 visible characters from a conservative set. */
const VALID_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export function requestIdFrom(incoming: string | string[] | undefined): string {
  if (typeof incoming === 'string' && VALID_ID.test(incoming)) return incoming;
  return randomUUID();
}
