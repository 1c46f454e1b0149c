// Floor for bench/run.sh: the least an HTTP/1.1 proxy built on node:http and undici can do — every request
// passed to TARGET through one undici Pool with the body streamed, response headers copied minus hop-by-hop
// ones, no routing, no logging, no forwarding headers, no error pages. Not a usable proxy: a yardstick for
// what Portico adds on top of the two libraries it is built on.
import { createServer } from 'node:http';
import { Pool } from 'undici';

const port = Number(process.env.PORT);
const pool = new Pool(process.env.TARGET, { connections: 128 });
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection']);

createServer((req, res) => {
  const headers = {};
  for (const name in req.headers) if (!HOP.has(name)) headers[name] = req.headers[name];
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  pool.dispatch(
    { method: req.method, path: req.url, headers, body: hasBody ? req : null },
    {
      // A client gone mid-response must release the upstream connection, or the pool runs dry.
      onConnect(abort) {
        res.on('close', () => {
          if (!res.writableFinished) abort();
        });
      },
      onHeaders(status, raw, resume) {
        const out = [];
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i].toString('latin1');
          if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'));
        }
        res.writeHead(status, out);
        res.on('drain', resume);
        return true;
      },
      onData(chunk) {
        return res.write(chunk);
      },
      onComplete() {
        res.end();
      },
      onError() {
        if (res.headersSent) res.destroy();
        else res.writeHead(502).end();
      },
    },
  );
}).listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
