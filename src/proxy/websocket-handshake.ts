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

/**
 * Checks a backend's `101` the way a client would (§4.1: `Upgrade: websocket` and the right
 * `Sec-WebSocket-Accept`). Returns why it is not a WebSocket switch, or undefined when it is.
 */
export function checkUpstreamSwitch(raw: readonly (Buffer | string)[], key: string): string | undefined {
  let upgrade: string | undefined;
  let accept: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString().toLowerCase();
    if (name === 'upgrade') upgrade = raw[i + 1]!.toString();
    else if (name === 'sec-websocket-accept') accept = accept === undefined ? raw[i + 1]!.toString() : '';
  }
  if (upgrade === undefined || upgrade.trim().toLowerCase() !== 'websocket') return 'websocket_bad_upgrade';
  if (accept === undefined) return 'websocket_accept_missing';
  if (accept.trim() !== acceptFor(key)) return 'websocket_accept_invalid';
  return undefined;
}
