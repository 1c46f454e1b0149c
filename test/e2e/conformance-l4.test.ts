/**
 * End to end, the L4 role (`tcp` and `tls` listeners) against hostile clients and broken backends, as
 * HAProxy / nginx-stream users expect it: half-close both ways, refused and resetting targets, idle timeout,
 * back-pressure into a target that never reads (Portico's RSS stays bounded), ClientHellos that are missing,
 * garbage, stalled or name nobody, PROXY headers that are malformed, oversized, split or forged, and TLS
 * termination (failed handshakes never reach a target; large transfers arrive intact). The real portico
 * process sits between node:net / node:tls clients and real servers that count every connection and byte.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { encodeProxyV1, encodeProxyV2, V2_SIGNATURE } from '../../src/l4/proxy-protocol.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { certDir, makeCert } from '../helpers/tls-certs.ts';

// --- backends that count what reaches them ---

type Handler = (s: Socket) => void;

interface Backend {
  readonly port: number;
  /** What the next connections do; a test sets it before connecting. */
  handler: Handler;
  connections: number;
  /** Bytes received over all connections. */
  bytes: number;
  /** Every connection's received bytes, in order of connection. */
  readonly received: Buffer[][];
  close(): Promise<void>;
}

async function closeServer(server: Server, sockets: Set<Socket>): Promise<void> {
  for (const s of sockets) s.destroy();
  if (!server.listening) return;
  const closed = once(server, 'close');
  server.close();
  await closed;
}

async function backend(handler: Handler = (s) => s.resume()): Promise<Backend> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    b.connections++;
    const mine: Buffer[] = [];
    b.received.push(mine);
    // Counting taps the 'data' stream only once the handler reads; a paused socket counts nothing.
    s.on('data', (chunk: Buffer) => {
      b.bytes += chunk.length;
      mine.push(chunk);
    });
    s.pause();
    b.handler(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const b: Backend = {
    port: (server.address() as { port: number }).port,
    handler,
    connections: 0,
    bytes: 0,
    received: [],
    close: () => closeServer(server, sockets),
  };
  return b;
}

/** A TLS backend (passthrough target) that answers every connection with its name. */
async function tlsBackend(name: string, cert: { cert: string; key: string }): Promise<Backend> {
  const sockets = new Set<Socket>();
  const server = createTlsServer({ cert: cert.cert, key: cert.key }, (s) => s.end(`${name}\n`));
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    b.connections++;
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const b: Backend = {
    port: (server.address() as { port: number }).port,
    handler: () => {},
    connections: 0,
    bytes: 0,
    received: [],
    close: () => closeServer(server, sockets),
  };
  return b;
}

/** A port nothing listens on (bound, then closed). */
async function refusedPort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  const closed = once(s, 'close');
  s.close();
  await closed;
  return port;
}

// --- client helpers ---

async function dial(port: number, options: { halfOpen?: boolean; localAddress?: string } = {}): Promise<Socket> {
  const s = connect({
    host: '127.0.0.1',
    port,
    allowHalfOpen: options.halfOpen ?? false,
    localAddress: options.localAddress,
  });
  s.on('error', () => {});
  await once(s, 'connect');
  return s;
}

/** Resolves when `s` is closed, with the bytes it received (read without destroying a half-open socket). */
function drain(s: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.once('close', () => resolve(Buffer.concat(chunks)));
    s.resume();
  });
}

/** Connects, writes `bytes` (if any), and resolves with what came back once the connection is closed. */
async function send(port: number, bytes: Buffer): Promise<Buffer> {
  const c = await dial(port);
  const got = drain(c);
  if (bytes.length > 0) c.write(bytes);
  return got;
}

/** Reads until the peer's FIN (the socket may stay writable). */
function readToEnd(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.once('end', () => resolve(Buffer.concat(chunks)));
    s.once('close', () => reject(new Error('closed before end')));
    s.resume();
  });
}

/** Deterministic bytes: `size` bytes, chunk `i` of a counter pattern. */
function blob(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
  return b;
}

function sha(...parts: Buffer[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits (bounded) until `check` holds; returns whether it did. */
async function eventually(check: () => boolean, ms = 5_000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 20) {
    if (check()) return true;
    await sleep(20);
  }
  return check();
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

// --- the process under test ---

describe('L4 conformance: hostile clients and broken backends', { timeout: 120_000 }, () => {
  let p: PorticoProcess;
  let admin: string;
  let certs: string;
  let caPem: string;
  const b: Record<string, Backend> = {};

  before(async () => {
    certs = certDir();
    const a = makeCert(certs, ['DNS:a.test'], { file: 'a' });
    const pem = { cert: readFileSync(a.cert, 'utf8'), key: readFileSync(a.key, 'utf8') };
    caPem = pem.cert;
    for (const name of ['main', 'idle', 'live', 'pp', 'ppu', 'term', 'reset']) b[name] = await backend();
    b.tlsA = await tlsBackend('A', pem);
    b.tlsDefault = await tlsBackend('default', pem);
    const dead = await refusedPort();
    const target = (name: string) => `{ address: "127.0.0.1:${b[name]!.port}" }`;
    p = await startPortico(`
admin: { address: "127.0.0.1:0" }
listeners:
  - { name: tcp, protocol: tcp, address: 127.0.0.1:0, upstream: main }
  - { name: idle, protocol: tcp, address: 127.0.0.1:0, upstream: idle, timeouts: { idle: 300ms } }
  - { name: reset, protocol: tcp, address: 127.0.0.1:0, upstream: reset }
  - { name: failover, protocol: tcp, address: 127.0.0.1:0, upstream: mixed, timeouts: { connect: 2s } }
  - { name: dead, protocol: tcp, address: 127.0.0.1:0, upstream: dead, timeouts: { connect: 2s } }
  - name: pass
    protocol: tls
    address: 127.0.0.1:0
    sni: [ { names: [a.test], upstream: tlsA } ]
    timeouts: { handshake: 400ms }
  - { name: passdef, protocol: tls, address: 127.0.0.1:0, upstream: tlsDefault, sni: [ { names: [a.test], upstream: tlsA } ] }
  - name: pp
    protocol: tcp
    address: 127.0.0.1:0
    upstream: pp
    proxyProtocol: { accept: { trusted: [127.0.0.1/32] } }
    timeouts: { handshake: 400ms }
  - name: ppu
    protocol: tcp
    address: 127.0.0.1:0
    upstream: ppu
    proxyProtocol: { accept: { trusted: [10.0.0.0/8] } }
  - name: term
    protocol: tls
    address: 127.0.0.1:0
    upstream: term
    tls: { mode: terminate, certificates: [ { cert: "file:${a.cert}", key: "file:${a.key}" } ] }
    timeouts: { handshake: 400ms }
upstreams:
  - { name: main, targets: [ ${target('main')} ] }
  - { name: idle, targets: [ ${target('idle')} ] }
  - { name: reset, targets: [ ${target('reset')} ] }
  - { name: mixed, balance: round-robin, targets: [ { address: "127.0.0.1:${dead}" }, ${target('live')} ] }
  - { name: dead, targets: [ { address: "127.0.0.1:${dead}" } ] }
  - { name: tlsA, targets: [ ${target('tlsA')} ] }
  - { name: tlsDefault, targets: [ ${target('tlsDefault')} ] }
  - { name: pp, targets: [ ${target('pp')} ] }
  - { name: ppu, targets: [ ${target('ppu')} ] }
  - { name: term, targets: [ ${target('term')} ] }
`);
    const started = p.lines.find((l) => l.msg === 'started')!;
    admin = `http://${String(started.admin)}`;
  });

  after(async () => {
    await p?.stop();
    for (const x of Object.values(b)) await x.close();
    rmSync(certs, { recursive: true, force: true });
  });

  async function metric(line: RegExp): Promise<string | undefined> {
    const text = await (await fetch(`${admin}/metrics`)).text();
    return text.split('\n').find((l) => line.test(l));
  }

  describe('half-close', () => {
    it('client FIN first: the target sees EOF, then its whole answer reaches the client', async () => {
      const question = blob(2 << 20, 1);
      const answer = blob(4 << 20, 2);
      let seen = '';
      b.main!.handler = (s) => {
        readToEnd(s).then(
          (got) => {
            seen = sha(got);
            s.end(answer);
          },
          () => {},
        );
      };
      const c = await dial(p.port('tcp'), { halfOpen: true });
      const reply = drain(c);
      c.end(question);
      assert.equal(sha(await reply), sha(answer), 'the answer sent after the client FIN arrives in full');
      assert.equal(seen, sha(question), 'the target saw every byte, then EOF');
    });

    it('target FIN first: the client sees EOF, then its whole upload reaches the target', async () => {
      const banner = blob(1 << 20, 3);
      const upload = blob(3 << 20, 4);
      let uploaded: Promise<Buffer> = Promise.resolve(Buffer.alloc(0));
      b.main!.handler = (s) => {
        s.end(banner);
        uploaded = readToEnd(s);
      };
      const c = await dial(p.port('tcp'), { halfOpen: true });
      const got = await readToEnd(c);
      assert.equal(sha(got), sha(banner));
      const closed = once(c, 'close');
      c.end(upload);
      assert.equal(sha(await uploaded), sha(upload), 'bytes sent after the target FIN arrive in full');
      await closed;
    });

    it('TLS termination honours half-close too (close_notify + FIN → target EOF, answer still delivered)', async () => {
      let seen = '';
      b.term!.handler = (s) => {
        readToEnd(s).then(
          (got) => {
            seen = got.toString();
            s.end('answer after EOF');
          },
          () => {},
        );
      };
      const c = tlsConnect({ host: '127.0.0.1', port: p.port('term'), servername: 'a.test', ca: caPem });
      c.on('error', () => {});
      await once(c, 'secureConnect');
      const reply = drain(c as unknown as Socket);
      c.end('question');
      assert.equal((await reply).toString(), 'answer after EOF');
      assert.equal(seen, 'question');
    });
  });

  describe('broken targets', () => {
    it('a refused target closes the client at once; the gauges return to zero', async () => {
      for (let i = 0; i < 3; i++) {
        const c = await dial(p.port('dead'));
        c.write('hello');
        assert.equal((await drain(c)).length, 0);
      }
      assert.ok(await eventually(() => p.lines.some((l) => l.msg === 'l4 no target reachable')));
      assert.match((await metric(/^portico_upstream_active_requests\{upstream="dead"\}/)) ?? '', / 0$/);
    });

    it('with a refused and a live target, every new connection reaches the live one', async () => {
      b.live!.handler = (s) => s.end('live\n');
      for (let i = 0; i < 4; i++) {
        const c = await dial(p.port('failover'));
        assert.equal((await drain(c)).toString(), 'live\n', `connection ${i}`);
      }
      assert.equal(b.live!.connections, 4);
    });

    it('a target that resets mid-stream gets the client closed, and the listener keeps serving', async () => {
      b.reset!.handler = (s) => {
        s.write('partial');
        s.once('data', () => s.resetAndDestroy());
        s.resume();
      };
      const c = await dial(p.port('reset'));
      const got = drain(c);
      await once(c, 'data');
      c.write('trigger');
      assert.equal((await got).toString(), 'partial');
      b.reset!.handler = (s) => s.end('fine\n');
      assert.equal((await drain(await dial(p.port('reset')))).toString(), 'fine\n');
    });

    it('idle timeout closes both the client and the target', async () => {
      let targetEnded: Promise<unknown> = Promise.resolve();
      b.idle!.handler = (s) => {
        s.resume();
        targetEnded = once(s, 'end'); // Portico closed its side (the target is half-open-capable)
      };
      const c = await dial(p.port('idle'));
      c.write('one byte and then silence');
      await drain(c);
      await targetEnded;
    });

    it('a target that never reads: back-pressure stops the client, Portico does not buffer it', async () => {
      const pid = p.child.pid!;
      let target: Socket | undefined;
      b.main!.handler = (s) => {
        target = s; // accepted, never read
      };
      const c = await dial(p.port('tcp'));
      assert.ok(await eventually(() => target !== undefined));
      const chunk = blob(1 << 20, 5);
      const base = rssBytes(pid);
      let peak = base;
      let accepted = 0;
      // Push up to 128 MiB; stop when the client's writes stay blocked for a while (the pipe is full).
      for (let i = 0; i < 128; i++) {
        accepted += chunk.length;
        if (!c.write(chunk)) {
          const drained = await Promise.race([once(c, 'drain').then(() => true), sleep(1_000).then(() => false)]);
          if (!drained) break;
        }
        peak = Math.max(peak, rssBytes(pid));
      }
      peak = Math.max(peak, rssBytes(pid));
      assert.ok(accepted < 128 << 20, `the client was never stopped: ${accepted >> 20} MiB accepted`);
      const growth = peak - base;
      assert.ok(growth < 48 << 20, `Portico grew by ${Math.round(growth / 2 ** 20)} MiB for a non-reading target`);
      // Once the target reads, it gets exactly what the client managed to send.
      c.end();
      const all = await readToEnd(target!);
      assert.equal(all.length, accepted);
      assert.equal(sha(all), sha(...Array.from({ length: accepted / chunk.length }, () => chunk)));
      c.destroy();
      target!.destroy();
    });
  });

  describe('TLS passthrough: what arrives instead of a good ClientHello', () => {
    /** A TLS client to `listener`; resolves with the first line it reads, or the error that ended it. */
    async function tryTls(listener: string, servername: string | undefined): Promise<string | Error> {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: p.port(listener),
        ca: caPem,
        checkServerIdentity: () => undefined,
        ...(servername === undefined ? {} : { servername }),
      });
      try {
        const [chunk] = (await once(s, 'data')) as [Buffer];
        return chunk.toString().split('\n')[0]!;
      } catch (err) {
        return err as Error;
      } finally {
        s.destroy();
      }
    }

    it('no SNI, or a name no route matches, without a default upstream: closed, no target dialled', async () => {
      const before = b.tlsA!.connections;
      assert.ok((await tryTls('pass', undefined)) instanceof Error);
      assert.ok((await tryTls('pass', 'unknown.test')) instanceof Error);
      assert.equal(b.tlsA!.connections, before);
      assert.equal(await tryTls('pass', 'a.test'), 'A');
    });

    it('no SNI, or an unknown name, with a default upstream: the default gets them', async () => {
      assert.equal(await tryTls('passdef', undefined), 'default');
      assert.equal(await tryTls('passdef', 'unknown.test'), 'default');
      assert.equal(await tryTls('passdef', 'A.TEST'), 'A', 'names are case-insensitive');
    });

    it('garbage, an oversized hello, or silence: closed (silence after the handshake timeout), still serving', async () => {
      const before = b.tlsA!.connections;
      // Each one's close is awaited from the start (one may close before the next is dialled).
      const closed = [
        send(p.port('pass'), Buffer.from('GET / HTTP/1.1\r\nHost: a.test\r\n\r\n')),
        // A handshake record whose ClientHello claims 64 KiB (over the 16 KiB peek limit).
        send(p.port('pass'), Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0x01, 0x00, 0x00, 0x03, 0x03])),
        send(p.port('pass'), Buffer.alloc(0)),
        send(p.port('pass'), Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00])),
      ];
      // While those are pending, a real client is served.
      assert.equal(await tryTls('pass', 'a.test'), 'A');
      for (const got of await Promise.all(closed)) assert.equal(got.length, 0);
      assert.equal(b.tlsA!.connections, before + 1, 'only the real client reached the target');
      assert.equal(await tryTls('pass', 'a.test'), 'A');
    });
  });

  describe('PROXY protocol', () => {
    const v1 = encodeProxyV1({ address: '203.0.113.7', port: 4242 }, { address: '198.51.100.1', port: 5432 });

    it('trusted peer: malformed, oversized or stalled headers are closed before any target is dialled', async () => {
      b.pp!.handler = (s) => s.resume();
      const before = b.pp!.connections;
      const v2BadVersion = Buffer.concat([V2_SIGNATURE, Buffer.from([0x31, 0x11, 0x00, 0x0c]), Buffer.alloc(12)]);
      const v2Short = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0x00, 0x04]), Buffer.alloc(4)]);
      // Claims a 65535-byte TLV area, then stalls after 100 bytes.
      const v2Stalled = Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff]), Buffer.alloc(100)]);
      const cases = [
        Buffer.from('PROXY TCP4 1.2.3.4 nope 1 2\r\nhello'),
        Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\nhello'),
        Buffer.from(`PROXY TCP4 ${'1'.repeat(200)}`),
        Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2'), // no CRLF yet: waits, then the handshake timeout
        v2BadVersion,
        v2Short,
        v2Stalled,
        Buffer.from('hello, no header'),
      ];
      const replies = await Promise.all(cases.map((bytes) => send(p.port('pp'), bytes)));
      for (const [i, got] of replies.entries()) assert.equal(got.length, 0, `case ${i}`);
      assert.equal(b.pp!.connections, before, 'no target connection for a bad header');
    });

    it('trusted peer: a v1 header split over several packets works; only the payload reaches the target', async () => {
      b.pp!.handler = (s) => {
        readToEnd(s).then(
          (got) => s.end(`got ${got.toString()}`),
          () => {},
        );
      };
      const c = await dial(p.port('pp'), { halfOpen: true });
      const reply = drain(c);
      for (const part of [v1.subarray(0, 3), v1.subarray(3, 17), v1.subarray(17)]) {
        c.write(part);
        await sleep(30);
      }
      c.end('payload');
      assert.equal((await reply).toString(), 'got payload');
    });

    it('untrusted peer: a header is refused and never forwarded, even split into small packets', async () => {
      const seen: string[] = [];
      b.ppu!.handler = (s) => {
        s.on('data', (chunk: Buffer) => seen.push(chunk.toString('latin1')));
        s.on('end', () => s.end());
        s.resume();
      };
      const v2 = encodeProxyV2({ address: '203.0.113.7', port: 1 }, { address: '198.51.100.1', port: 2 });
      const splits = [
        [v1],
        [v1.subarray(0, 3), v1.subarray(3)],
        [v1.subarray(0, 1), v1.subarray(1)],
        [v2.subarray(0, 2), v2.subarray(2)],
      ];
      for (const [i, parts] of splits.entries()) {
        const c = await dial(p.port('ppu'));
        const got = drain(c);
        for (const part of parts) {
          c.write(part);
          await sleep(30);
        }
        c.end('after the header');
        await got;
        assert.deepEqual(seen, [], `split ${i}: nothing of a forged header reaches the target`);
      }
    });

    it('untrusted peer: ordinary data that starts like a header (small packets) is served unchanged', async () => {
      b.ppu!.handler = (s) => s.pipe(s);
      for (const parts of [
        ['P', 'ING\r\n'],
        ['PRO', 'FILE\r\n'],
        ['\r\n', 'QUIT\r\n'],
      ]) {
        const c = await dial(p.port('ppu'), { halfOpen: true });
        const got = drain(c);
        for (const part of parts) {
          c.write(part);
          await sleep(30);
        }
        c.end();
        assert.equal((await got).toString(), parts.join(''));
      }
      // A prefix followed by FIN is flushed, not held.
      const c = await dial(p.port('ppu'), { halfOpen: true });
      const got = drain(c);
      c.end('PRO');
      assert.equal((await got).toString(), 'PRO');
    });
  });

  describe('TLS termination', () => {
    it('clients that fail or stall the handshake never reach the target', async () => {
      const before = b.term!.connections;
      // Rejects Portico's certificate (no CA given): the handshake never completes.
      const untrusting = tlsConnect({ host: '127.0.0.1', port: p.port('term'), servername: 'a.test' });
      const rejected = await once(untrusting, 'error').then(([e]) => e as Error);
      assert.match(rejected.message, /self-signed|certificate/);
      const closed = [
        send(p.port('term'), Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])),
        send(p.port('term'), Buffer.from([0x16, 0x03, 0x01])),
      ];
      // Closed (after at most a TLS alert), however the handshake failed.
      for (const got of await Promise.all(closed)) assert.ok(got.length === 0 || got[0] === 0x15, got.toString('hex'));
      await sleep(100);
      assert.equal(b.term!.connections, before);
    });

    it('16 MiB each way through an echo target arrive intact (sha256)', async () => {
      b.term!.handler = (s) => s.pipe(s);
      const data = blob(16 << 20, 6);
      const c: TLSSocket = tlsConnect({ host: '127.0.0.1', port: p.port('term'), servername: 'a.test', ca: caPem });
      c.on('error', () => {});
      await once(c, 'secureConnect');
      const echoed = drain(c as unknown as Socket);
      c.end(data);
      assert.equal(sha(await echoed), sha(data));
    });
  });
});
