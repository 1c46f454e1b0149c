/**
 * @module Node's own HTTP/1 response parser (llhttp, in C++), the one `node:http`'s client uses.
 *
 * It is reached through `_http_common`, the module Node's HTTP client and server share. That module is not
 * documented, but it is the fastest strict HTTP/1 parser a Node process has (undici runs the same llhttp
 * compiled to WebAssembly, behind more layers). Everything Portico relies on is here, and
 * test/unit/proxy/http1-parser.test.ts pins each behaviour the client depends on, so a Node upgrade that
 * changes one fails a test instead of a request.
 */
import { createRequire } from 'node:module';

/** The callbacks Node's binding calls, by slot. */
export interface ParserCallbacks {
  /** Header pairs that did not fit the head callback (more than 32), or a chunked body's trailers. */
  onHeaders(headers: string[]): void;
  /** Returns 1 to skip the body (a response to HEAD), 0 otherwise. `headers` is undefined after onHeaders. */
  onHeadersComplete(
    versionMajor: number,
    versionMinor: number,
    headers: string[] | undefined,
    method: unknown,
    url: unknown,
    statusCode: number,
    statusMessage: string,
    upgrade: boolean,
    shouldKeepAlive: boolean,
  ): number;
  onBody(chunk: Buffer): void;
  onMessageComplete(): void;
}

/** One llhttp instance. `execute` returns the bytes parsed or an Error whose `code` is llhttp's (`HPE_…`). */
export interface ResponseParser {
  execute(data: Buffer): number | (Error & { code: string; bytesParsed?: number });
  /** End of input: completes a body read to EOF; an Error when the input stopped inside a message. */
  finish(): undefined | (Error & { code: string });
  /**
   * A fresh state for the next message. Needed after a head was stopped with 2 (`onHeadersComplete`): llhttp
   * then marks the parser as upgraded, and Node's binding stops reporting parse errors for good — a malformed
   * second response on the connection would just stop being parsed.
   */
  reset(): void;
  close(): void;
}

interface ParserClass {
  new (): ResponseParser & Record<number, unknown> & { initialize(...args: unknown[]): void };
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

const HTTPParser = (createRequire(import.meta.url)('_http_common') as { HTTPParser: ParserClass }).HTTPParser;
/** Node asks for an async resource per parser; one inert object serves them all. */
const RESOURCE = {};
/** Strict parsing (no lenient flags), as Node's client by default. */
const STRICT = 0;

/** A strict response parser that calls `callbacks`; heads over `maxHeaderSize` bytes are an error. */
export function createResponseParser(callbacks: ParserCallbacks, maxHeaderSize: number): ResponseParser {
  const parser = new HTTPParser() as ResponseParser & Record<number, unknown> & { initialize(...a: unknown[]): void };
  parser.initialize(HTTPParser.RESPONSE, RESOURCE, maxHeaderSize, STRICT);
  parser.reset = () => parser.initialize(HTTPParser.RESPONSE, RESOURCE, maxHeaderSize, STRICT);
  parser[HTTPParser.kOnHeaders] = callbacks.onHeaders.bind(callbacks);
  parser[HTTPParser.kOnHeadersComplete] = callbacks.onHeadersComplete.bind(callbacks);
  parser[HTTPParser.kOnBody] = callbacks.onBody.bind(callbacks);
  parser[HTTPParser.kOnMessageComplete] = callbacks.onMessageComplete.bind(callbacks);
  return parser;
}
