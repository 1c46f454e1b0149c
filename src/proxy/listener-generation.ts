/** @module What an HTTP listener reads per request; swapped as a whole on reload. */
import type { AddressMatcher } from '../lib/cidr.ts';
import type { Logger } from '../observe/logger.ts';
import type { AccessCheck } from './shield.ts';
import type { ProxyRuntime } from './types.ts';

export interface ListenerGeneration {
  readonly runtime: ProxyRuntime;
  readonly isTrusted: AddressMatcher;
  /** The listener's allow / deny lists of client addresses. */
  readonly access: AccessCheck | undefined;
  readonly proto: 'http' | 'https';
  readonly logger: Logger;
  /** True while shutting down: responses carry `Connection: close`. */
  draining: boolean;
}
