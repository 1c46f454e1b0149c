/** @module Free loopback ports for tests that must name a port before something listens on it. */
import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';

/** A 127.0.0.1 port nothing listens on right now (bound to 0, read, released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as AddressInfo).port;
  s.close();
  await once(s, 'close');
  return port;
}
