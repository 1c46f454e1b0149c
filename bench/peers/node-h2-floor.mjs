// Floor for the h2 suite of bench/run.sh: the least an HTTPS HTTP/2 → HTTP/1.1 proxy built on node:http2 and
// undici can do — each stream passed to TARGET through one undici Pool over the raw stream API (no compat
// objects), response headers copied minus hop-by-hop ones; no routing, logging, forwarding headers or error
// pages. Not a usable proxy: a yardstick for what Node's HTTP/2, TLS and an upstream exchange cost together.
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';
import { Pool } from 'undici';

const port = Number(process.env.PORT);
const pool = new Pool(process.env.TARGET, { connections: 128 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection']);
const server = createSecureServer({ cert: readFileSync(process.env.CERT), key: readFileSync(process.env.KEY) });

server.on('stream', (stream, h2) => {
  const headers = {};
  for (const name in h2) if (name.charCodeAt(0) !== 58) headers[name] = h2[name];
  headers.host = h2[':authority'];
  pool.dispatch(
    { method: h2[':method'], path: h2[':path'], headers, body: stream.endAfterHeaders ? null : stream },
    {
      onConnect(abort) {
        stream.on('close', () => {
          if (!stream.writableFinished) abort();
        });
      },
      onHeaders(status, raw, resume) {
        const out = { ':status': status };
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i].toString('latin1').toLowerCase();
          if (!HOP.has(name)) out[name] = raw[i + 1].toString('latin1');
        }
        stream.respond(out);
        stream.on('drain', resume);
        return true;
      },
      onData(chunk) {
        return stream.write(chunk);
      },
      onComplete() {
        stream.end();
      },
      onError() {
        if (stream.headersSent) stream.close();
        else stream.respond({ ':status': 502 }, { endStream: true });
      },
    },
  );
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
