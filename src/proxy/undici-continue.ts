/**
 * @module Lets undici's HTTP/1 parser skip an unsolicited `100 Continue` like any other interim response.
 *
 * undici serves only `http2: true` upstreams now (HTTP/1.1 targets use http1/), but such a target may offer
 * only HTTP/1.1 by ALPN, and undici then speaks HTTP/1.1 to it.
 *
 * RFC 9110 §15.2: a client MUST be able to parse one or more 1xx responses received before the final one,
 * even if it does not expect one. undici 7 destroys the connection on any 100 (it never sends `Expect`
 * itself), so a backend that writes `100 Continue` before every answer (some application servers do) would
 * cost each request a 502. Portico never sends `Expect` upstream (it answers the client's itself), so every
 * upstream 100 is unsolicited: it is parsed and dropped, and the final response follows as usual. A 100
 * does not restart the response timeout.
 *
 * undici does not export its parser class: its prototype is reached once through a parser made for a
 * stand-in socket, and only `onHeadersComplete` is wrapped. If a later undici changes that shape, nothing is
 * patched and an unsolicited 100 is a 502 again (test/e2e/upstream-http2.test.ts says so).
 */
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

type OnHeadersComplete = (this: ParserShape, statusCode: number, upgrade: boolean, keepAlive: boolean) => number;

interface ParserShape {
  socket: { destroyed: boolean };
  client: Record<symbol, unknown>;
  statusCode: number;
  headers: unknown[];
  headersSize: number;
  onHeadersComplete: OnHeadersComplete;
  destroy(): void;
}

let installed = false;

/** Installs the patch (once per process; later calls do nothing). */
export function acceptUnsolicitedContinue(): void {
  if (installed) return;
  installed = true;
  const symbols = require('undici/lib/core/symbols.js') as Record<string, symbol>;
  const connectH1 = require('undici/lib/dispatcher/client-h1.js') as (client: object, socket: object) => unknown;
  const kParser = symbols.kParser!;
  const kRunning = symbols.kRunning!;
  const socket = Object.assign(new EventEmitter(), { destroyed: false, errored: null });
  const client = { [symbols.kMaxHeadersSize!]: 16 * 1024, [symbols.kMaxResponseSize!]: -1 };
  let parser: ParserShape | undefined;
  try {
    connectH1(client, socket);
    parser = (socket as unknown as Record<symbol, ParserShape | undefined>)[kParser];
  } catch {
    return;
  }
  if (parser === undefined) return;
  const proto = Object.getPrototypeOf(parser) as ParserShape;
  parser.destroy();
  const original = proto.onHeadersComplete;
  if (typeof original !== 'function' || original.length !== 3 || !('headersSize' in parser)) return;
  proto.onHeadersComplete = function onHeadersComplete(statusCode, upgrade, keepAlive) {
    if (statusCode !== 100 || upgrade || this.socket.destroyed || this.client[kRunning] === 0) {
      return original.call(this, statusCode, upgrade, keepAlive);
    }
    // What undici does for the other 1xx codes, minus telling the handler and restarting the timeout.
    this.statusCode = statusCode;
    this.headers = [];
    this.headersSize = 0;
    return 1; // no body: llhttp completes the interim message and goes on to the next one
  };
}
