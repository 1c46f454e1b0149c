/**
 * End to end: bodies stream both ways with backpressure. 200 MiB up and 200 MiB down pass through the real
 * process while its peak resident memory stays far below the body size.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { startUpstream } from '../helpers/http.ts';
import { startPortico } from '../helpers/portico.ts';

const MiB = 1024 * 1024;
const TOTAL = 200 * MiB;
const CHUNK = Buffer.alloc(64 * 1024, 7);

/** A readable of `total` bytes made of one reused chunk (the test itself must not hold 200 MiB). */
function generated(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK.length, total - sent);
      sent += n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

/** Peak (VmHWM) or current (VmRSS) resident memory of a process, in MiB. */
async function rssMiB(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)![1]);
  return kib / 1024;
}

describe('streaming', () => {
  it('streams 200 MiB up and 200 MiB down with flat memory', async (t) => {
    const upstream = await startUpstream((req, res) => {
      if (req.method === 'POST') {
        const hash = createHash('sha256');
        let n = 0;
        req.on('data', (c: Buffer) => {
          n += c.length;
          hash.update(c);
        });
        req.on('end', () => res.end(JSON.stringify({ n, sha: hash.digest('hex') })));
        return;
      }
      res.writeHead(200, { 'content-length': String(TOTAL), 'content-type': 'application/octet-stream' });
      generated(TOTAL).pipe(res);
    });
    const p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: blob, targets: [ { url: ${upstream.url} } ] } ]
routes: [ { name: all, match: { path: /* }, limits: { maxBodySize: 1GiB }, upstream: blob } ]
`);
    t.after(async () => {
      await p.stop();
      await upstream.close();
    });
    const atStart = await rssMiB(p.child.pid!, 'VmRSS');

    // Upload: chunked (no Content-Length), so nothing can size a buffer up front.
    const expected = createHash('sha256');
    for (let sent = 0; sent < TOTAL; sent += CHUNK.length) expected.update(CHUNK);
    const uploaded = await new Promise<{ n: number; sha: string }>((resolve, reject) => {
      const req = request(`${p.url()}/upload`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
      });
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve(JSON.parse(text) as { n: number; sha: string }));
      });
      req.on('error', reject);
      pipeline(generated(TOTAL), req).catch(reject);
    });
    assert.equal(uploaded.n, TOTAL);
    assert.equal(uploaded.sha, expected.digest('hex'));

    // Download, read slowly at first so backpressure has to hold the upstream back.
    const received = await new Promise<number>((resolve, reject) => {
      request(`${p.url()}/download`, (res) => {
        let n = 0;
        res.pause();
        setTimeout(() => res.resume(), 300);
        res.on('data', (c: Buffer) => {
          n += c.length;
        });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      })
        .on('error', reject)
        .end();
    });
    assert.equal(received, TOTAL);

    // Buffering either body would add 200 MiB; streaming adds only what is in flight plus garbage not yet collected.
    const growth = (await rssMiB(p.child.pid!, 'VmHWM')) - atStart;
    assert.ok(growth < 100, `peak RSS grew by ${growth.toFixed(0)} MiB while 400 MiB streamed through`);
  });
});
