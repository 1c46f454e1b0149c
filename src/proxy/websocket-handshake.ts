/**
 * @module The WebSocket opening handshake as the edge checks it (RFC 6455 §4): the client's request before it
 * reaches a backend (§4.2.1, §4.4), and the backend's `101` before it reaches the client (§4.1, §4.2.2).
 *
 * nginx and HAProxy pass whatever they get and leave both checks to the two ends. Portico checks both: a
 * malformed handshake never costs a backend connection, and a backend that cannot speak WebSocket gets a
 * 502 instead of a tunnel the client would fail anyway. Only what RFC 6455 requires is checked, so every valid
 * handshake passes unchanged (subprotocols, extensions, `Origin` and any other header included).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { type LocalReply, localReply } from '../errors.ts';

/** RFC 6455 §1.3: appended to the key before hashing. */
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** The one version RFC 6455 defines (§4.4); also the value of the 426 answer's `Sec-WebSocket-Version`. */
export const WEBSOCKET_VERSION = '13';

/** A base64-encoded 16-byte value (§4.1 item 7): 22 characters and `==` (as the `ws` server checks it). */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

/** §4.4: a server that does not support the requested version answers with the versions it does. */
const VERSION_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'sec-websocket-version': WEBSOCKET_VERSION,
  // RFC 9110 §15.5.22: a 426 names the protocol to upgrade to.
  upgrade: 'websocket',
});

/**
 * Checks the parts of a client's opening handshake RFC 6455 §4.2.1 requires (the listener already checked
 * HTTP/1.1, `Upgrade: websocket` and `Connection: upgrade`, and Node the `Host`). Returns the refusal, or
 * undefined for a valid handshake.
 */
export function checkClientHandshake(req: IncomingMessage): LocalReply | undefined {
  if (req.method !== 'GET') return localReply('GW_WEBSOCKET_BAD_HANDSHAKE', 'websocket_not_get');
  // A body has no meaning in the handshake, and the parser hands everything after the head over as tunnel
  // bytes: forwarded, it would reach the backend as WebSocket frames (its framing included). Refused.
  const length = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && !/^\s*0+\s*$/.test(length))) {
    return localReply('GW_WEBSOCKET_BAD_HANDSHAKE', 'websocket_with_body');
  }
  const key = req.headers['sec-websocket-key'];
  if (key === undefined) return localReply('GW_WEBSOCKET_BAD_HANDSHAKE', 'websocket_key_missing');
  if (typeof key !== 'string' || !KEY.test(key.trim())) {
    return localReply('GW_WEBSOCKET_BAD_HANDSHAKE', 'websocket_key_invalid');
  }
  const version = req.headers['sec-websocket-version'];
  if (version === undefined) {
    return localReply('GW_WEBSOCKET_VERSION_UNSUPPORTED', 'websocket_version_missing', { ...VERSION_HEADERS });
  }
  if (typeof version !== 'string' || version.trim() !== WEBSOCKET_VERSION) {
    return localReply('GW_WEBSOCKET_VERSION_UNSUPPORTED', 'websocket_version_unsupported', { ...VERSION_HEADERS });
  }
  return undefined;
}

/** The `Sec-WebSocket-Accept` value a server must answer `key` with (§4.2.2 item 5.4). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key.trim()).update(WEBSOCKET_GUID).digest('base64');
}

/** What the client offered, to check the backend's choice against (§4.1 items 5 and 6 of the response). */
export interface Offer {
  readonly key: string;
  /** `Sec-WebSocket-Protocol` as sent (one value, or undefined). */
  readonly protocols: string | undefined;
  /** `Sec-WebSocket-Extensions` as sent. */
  readonly extensions: string | undefined;
}

/** The offer of a client request (Node joins repeated fields with `, `, which is the same list). */
export function offerOf(req: IncomingMessage): Offer {
  const h = req.headers;
  const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(', ') : v);
  return {
    key: String(h['sec-websocket-key'] ?? ''),
    protocols: one(h['sec-websocket-protocol']),
    extensions: one(h['sec-websocket-extensions']),
  };
}

/**
 * Checks a backend's `101` the way a client would (§4.1): `Upgrade: websocket`, the right
 * `Sec-WebSocket-Accept`, at most one subprotocol and one the client offered, and only extensions the client
 * offered. Returns why it is not a WebSocket switch, or undefined when it is.
 */
export function checkUpstreamSwitch(raw: readonly (Buffer | string)[], offer: Offer): string | undefined {
  let upgrade: string | undefined;
  let accept: string | undefined;
  let protocol: string | undefined;
  let extensions: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString().toLowerCase();
    const value = raw[i + 1]!.toString();
    if (name === 'upgrade') upgrade = value;
    else if (name === 'sec-websocket-accept') accept = accept === undefined ? value : '';
    else if (name === 'sec-websocket-protocol') protocol = protocol === undefined ? value : `${protocol},${value}`;
    else if (name === 'sec-websocket-extensions')
      extensions = extensions === undefined ? value : `${extensions},${value}`;
  }
  if (upgrade === undefined || upgrade.trim().toLowerCase() !== 'websocket') return 'websocket_bad_upgrade';
  if (accept === undefined) return 'websocket_accept_missing';
  if (accept.trim() !== acceptFor(offer.key)) return 'websocket_accept_invalid';
  if (protocol !== undefined) {
    const chosen = protocol.trim();
    // §4.2.2: the server selects one of the client's values (exact match; subprotocol names are tokens).
    if (chosen === '' || !listOf(offer.protocols).includes(chosen)) return 'websocket_protocol_not_offered';
  }
  if (extensions !== undefined) {
    const offered = new Set(listOf(offer.extensions).map(extensionName));
    for (const ext of listOf(extensions)) {
      if (!offered.has(extensionName(ext))) return 'websocket_extension_not_offered';
    }
  }
  return undefined;
}

/** The non-empty members of a comma-separated field value, trimmed. */
function listOf(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(',')) {
    const v = part.trim();
    if (v !== '') out.push(v);
  }
  return out;
}

/** `permessage-deflate; client_max_window_bits` → `permessage-deflate` (names compare case-insensitively). */
function extensionName(ext: string): string {
  const semi = ext.indexOf(';');
  return (semi === -1 ? ext : ext.slice(0, semi)).trim().toLowerCase();
}
