/**
 * @module Address lists (trusted proxies, allow/deny lists): IPv4 and IPv6 addresses and CIDR blocks, compiled
 * once into a `node:net` BlockList. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`, what a dual-stack socket
 * reports for an IPv4 peer) match IPv4 blocks, and the other way round.
 */
import { BlockList, isIP } from 'node:net';

/** Tests whether an address is in the list; false for anything that is not an IP address. */
export type AddressMatcher = (ip: string) => boolean;

function never(): boolean {
  return false;
}

/**
 * Checks one list entry: an address (`10.0.0.1`, `::1`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`).
 * @returns an error message for config validation, or undefined when the entry is valid.
 */
export function validateCidr(text: string): string | undefined {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return `"${text}" is not an IP address or CIDR block (e.g. 10.0.0.0/8, ::1)`;
  if (slash === -1) return undefined;
  const prefix = text.slice(slash + 1);
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) {
    return `"${text}" has an invalid prefix length (0 to ${max} for IPv${family})`;
  }
  return undefined;
}

/**
 * Compiles a list of addresses and CIDR blocks into a matcher. Throws on an invalid entry (config validation
 * should have called {@link validateCidr} first). An empty list matches nothing.
 *
 * @example createAddressMatcher(['127.0.0.0/8', '::1'])('::ffff:127.0.0.1') // true
 */
export function createAddressMatcher(list: readonly string[]): AddressMatcher {
  if (list.length === 0) return never;
  const blocks = new BlockList();
  for (const entry of list) {
    const error = validateCidr(entry);
    if (error !== undefined) throw new Error(error);
    const slash = entry.indexOf('/');
    const address = slash === -1 ? entry : entry.slice(0, slash);
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (slash === -1) blocks.addAddress(address, type);
    else blocks.addSubnet(address, Number(entry.slice(slash + 1)), type);
  }
  return function matchAddress(ip: string): boolean {
    if (ip.indexOf(':') === -1) return blocks.check(ip, 'ipv4');
    // A zone id (`fe80::1%eth0`) is local to this host and not part of the address.
    const zone = ip.indexOf('%');
    return blocks.check(zone === -1 ? ip : ip.slice(0, zone), 'ipv6');
  };
}
