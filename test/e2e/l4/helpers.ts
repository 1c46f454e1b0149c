/**
 * @module Helpers for the L4 end-to-end tests: real redis-server processes, pools built with createPool,
 * self-signed certificates from openssl, a recording logger, and small socket utilities.
 */

import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';
import type { L4Log } from '../../../src/l4/types.ts';
import { createPool } from '../../../src/upstream/pool.ts';
import { upstream } from '../../../src/upstream/schema.ts';
import type { Pool } from '../../../src/upstream/types.ts';
import { certDir, makeCert } from '../../helpers/tls-certs.ts';

export const run = promisify(execFile);

export interface LogEntry {
  level: string;
  msg: string;
  obj: object;
}

/** A logger that keeps every entry, so tests can assert on what was logged. */
export function recordingLog(): L4Log & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: string) =>
    (obj: object, msg: string): void => {
      entries.push({ level, msg, obj });
    };
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A pool over `host:port` addresses, built the way the runtime builds one. */
export function tcpPool(name: string, addresses: string[]): Pool {
  return createPool(
    upstream.parse({ name, balance: 'round-robin', targets: addresses.map((address) => ({ address })) }),
  );
}

export function closePool(pool: Pool): void {
  (pool as { close?: () => void }).close?.();
}

/** A port that was free a moment ago (for programs that cannot be told to bind port 0). */
import { freePort } from '../../helpers/ports.ts';

/** A real redis-server on its own port (the shared helper; `stop()` kills it). */
export { startRedisServer as startRedis } from '../../helpers/redis-server.ts';
export { freePort };

/** `redis-cli -p <port> <args…>` → trimmed stdout. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

export interface Cert {
  readonly cert: string;
  readonly key: string;
}

/** Self-signed P-256 certificates for the given names (CN and SAN), as PEM text. */
export async function makeCerts(names: string[]): Promise<Cert[]> {
  const dir = certDir();
  try {
    return names.map((name, i) => {
      const files = makeCert(dir, [`DNS:${name}`], { file: String(i), subject: `/CN=${name}` });
      return { cert: readFileSync(files.cert, 'utf8'), key: readFileSync(files.key, 'utf8') };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface TestServer {
  readonly server: Server;
  readonly port: number;
  /** Destroys open connections and closes the server. */
  close(): Promise<void>;
}

/** Starts a net server on 127.0.0.1:0 with allowHalfOpen. */
export async function startServer(onSocket: (s: Socket) => void): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    onSocket(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as { port: number }).port,
    async close() {
      for (const s of sockets) s.destroy();
      if (!server.listening) return;
      const closed = once(server, 'close');
      server.close();
      await closed;
    },
  };
}

/** Reads a socket to its end (without destroying it, unlike `for await`, so half-closed sockets can still write). */
export function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => resolve(Buffer.concat(chunks)));
    socket.once('error', reject);
  });
}
