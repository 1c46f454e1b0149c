/**
 * End to end: a plain upstream connection reads into one buffer of its own (src/proxy/http1/read-buffer.ts),
 * and response bytes are written to clients as views of it. Every path a chunk can take must leave each client
 * exactly its own bytes, whether the buffer is reused (the write went to the kernel), kept (a slow client, a
 * partial write), or copied (HTTP/2 streams, compression and cache sinks): many concurrent keep-alive clients,
 * a slow reader beside fast ones, HTTP/2 streams, gzip and the cache.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { bodyOf, sha, writeInPieces } from '../helpers/bodies.ts';
import { startUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

/** The sizes each client asks for in turn: within one read, across reads, and many reads long. */
const SIZES = [1, 1500, 70_000, 3000, 250_000, 16_383, 16_384, 65_536, 700];

/** GET through HTTP/1.1 on a keep-alive agent-less socket reuse: the body and its sha. */
function get(
  url: string,
  opts: { slow?: boolean } = {},
): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        if (opts.slow !== true) return;
        // A reader that keeps falling behind: Portico's writes to it are often partial.
        res.pause();
        setTimeout(() => res.resume(), chunks.length % 50 === 1 ? 100 : 1);
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('responses relayed from the upstream read buffer', () => {
  let upstream: TestServer;
  let p: PorticoProcess;

  before(async () => {
    upstream = await startUpstream((req, res) => {
      // /body/SIZE/SEED, written in pieces of varied sizes so reads split the body anywhere; /trickle/SIZE/SEED in
      // 16 KiB pieces a millisecond apart, so Portico reads them one by one.
      const [, kind, size, seed] = (req.url ?? '').split('/');
      const body = bodyOf(Number(size), Number(seed));
      res.writeHead(200, {
        'content-length': String(body.length),
        'content-type': 'text/plain',
        'cache-control': 'max-age=60',
      });
      if (kind === 'trickle') {
        let at = 0;
        const trickle = (): void => {
          if (at >= body.length) {
            res.end();
            return;
          }
          const more = res.write(body.subarray(at, at + 16384));
          at += 16384;
          if (more) setTimeout(trickle, 1);
          else res.once('drain', trickle);
        };
        trickle();
        return;
      }
      writeInPieces(res, body, Number(seed));
    });
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0, h2c: true } ]
upstreams: [ { name: origin, targets: [ { url: ${upstream.url} } ], maxConnectionsPerTarget: 4 } ]
routes:
  - { name: gz, match: { path: /gz/* }, rewrite: { stripPrefix: /gz }, compress: true, upstream: origin }
  - { name: cached, match: { path: /cached/* }, rewrite: { stripPrefix: /cached }, cache: { ttl: 30s }, upstream: origin }
  - { name: plain, match: { path: /* }, upstream: origin }
`);
  });

  after(async () => {
    await p?.stop();
    await upstream?.close();
  });

  it('many concurrent HTTP/1.1 clients each get exactly their own bytes', async () => {
    // 12 clients over at most 4 upstream connections: each connection's buffer serves many clients in turn.
    const clients = Array.from({ length: 12 }, async (_, c) => {
      for (let i = 0; i < SIZES.length; i++) {
        const size = SIZES[(i + c) % SIZES.length]!;
        const seed = c * 100 + i;
        const res = await get(`${p.url()}/body/${size}/${seed}`);
        assert.equal(res.status, 200);
        assert.equal(res.body.length, size, `client ${c} request ${i}`);
        assert.equal(sha(res.body), sha(bodyOf(size, seed)), `client ${c} request ${i}: size ${size}`);
      }
    });
    await Promise.all(clients);
  });

  it('a slow reader of a large body gets every byte while fast clients share the upstream connections', async () => {
    const size = 24 * 1024 * 1024;
    const slow = get(`${p.url()}/body/${size}/7`, { slow: true });
    await sleep(50);
    const fast = Array.from({ length: 8 }, (_, i) => get(`${p.url()}/body/${SIZES[i]}/${500 + i}`));
    for (const [i, res] of (await Promise.all(fast)).entries()) {
      assert.equal(sha(res.body), sha(bodyOf(SIZES[i]!, 500 + i)), `fast client ${i}`);
    }
    const res = await slow;
    assert.equal(res.body.length, size);
    assert.equal(sha(res.body), sha(bodyOf(size, 7)));
  });

  it('a client with a tiny receive window that stops reading while small chunks keep coming gets every byte', async () => {
    // The client's small window (SO_RCVBUF, which Node cannot set: python3 does) soon leaves Portico's writes
    // waiting in Node, while reads of the next chunks go on below the high-water mark: only a kept buffer
    // keeps the waiting bytes from being overwritten by those reads.
    const size = 4 * 1024 * 1024;
    const client = async (seed: number): Promise<void> => {
      const script = [
        'import socket,sys,time,hashlib',
        's=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_RCVBUF,4096)',
        `s.connect(("127.0.0.1",${new URL(p.url()).port}))`,
        `s.sendall(b"GET /trickle/${size}/${seed} HTTP/1.1\\r\\nHost: t\\r\\nConnection: close\\r\\n\\r\\n")`,
        'time.sleep(0.5)',
        'data=bytearray()',
        'while True:',
        '  c=s.recv(65536)',
        '  if not c: break',
        '  data+=c',
        'body=bytes(data[data.index(b"\\r\\n\\r\\n")+4:])',
        'print(len(body),hashlib.sha256(body).hexdigest())',
      ].join('\n');
      const child = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        out += c;
      });
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 0);
      assert.equal(out.trim(), `${size} ${sha(bodyOf(size, seed))}`, `client ${seed}`);
    };
    await Promise.all([11, 12].map(client));
  });

  it('HTTP/2 streams (which keep what they are given) each get their own bytes', async () => {
    const session = h2connect(p.url());
    try {
      const streams = SIZES.concat(SIZES).map(
        (size, i) =>
          new Promise<void>((resolve, reject) => {
            const stream = session.request({ ':path': `/body/${size}/${900 + i}` });
            const chunks: Buffer[] = [];
            stream.on('data', (c: Buffer) => chunks.push(c));
            stream.on('end', () => {
              try {
                assert.equal(sha(Buffer.concat(chunks)), sha(bodyOf(size, 900 + i)), `stream ${i}: size ${size}`);
                resolve();
              } catch (err) {
                reject(err);
              }
            });
            stream.on('error', reject);
            stream.end();
          }),
      );
      await Promise.all(streams);
    } finally {
      session.close();
    }
  });

  it('compressed responses (a sink that keeps what it is given) decode to the upstream bytes', async () => {
    const results = await Promise.all(
      SIZES.map(async (size, i) => {
        const res = await new Promise<{ body: Buffer; encoding: unknown }>((resolve, reject) => {
          const req = request(
            `${p.url()}/gz/body/${size}/${300 + i}`,
            { headers: { 'accept-encoding': 'gzip' } },
            (r) => {
              const chunks: Buffer[] = [];
              r.on('data', (c: Buffer) => chunks.push(c));
              r.on('end', () => resolve({ body: Buffer.concat(chunks), encoding: r.headers['content-encoding'] }));
            },
          );
          req.on('error', reject);
          req.end();
        });
        return { size, i, ...res };
      }),
    );
    for (const { size, i, body, encoding } of results) {
      const plain = encoding === 'gzip' ? gunzipSync(body) : body;
      assert.equal(sha(plain), sha(bodyOf(size, 300 + i)), `size ${size}`);
    }
  });

  it('cached responses, stored while relayed and then served as hits, are the upstream bytes', async () => {
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(SIZES.map((size, i) => get(`${p.url()}/cached/body/${size}/${700 + i}`)));
      for (const [i, res] of results.entries()) {
        assert.equal(sha(res.body), sha(bodyOf(SIZES[i]!, 700 + i)), `round ${round}, size ${SIZES[i]}`);
        if (round === 1) assert.equal(res.headers['x-cache'], 'HIT', `size ${SIZES[i]}`);
      }
    }
  });
});
