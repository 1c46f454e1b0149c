/**
 * @module Reads a JSON document from an identity provider's answer (JWKS, token introspection) with a size cap,
 * so a broken or hostile endpoint cannot make a policy buffer an unbounded body.
 */

/** The default cap: far above any real key set or introspection answer. */
export const MAX_IDP_DOCUMENT_BYTES = 1024 * 1024;

/** Parses `body` as JSON, destroying it and throwing once it passes `max` bytes. */
export async function readLimitedJson(
  body: AsyncIterable<unknown> & { destroy(): unknown },
  max: number,
  what: string,
): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.destroy();
      throw new Error(`${what} too large`);
    }
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}
