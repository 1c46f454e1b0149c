// Floor for the h2 suite of bench/run.sh: a bare node:http2 TLS server answering every request with 1 KiB
// from memory through the raw stream API — no proxying at all. What Node's HTTP/2 and TLS cost per request
// before any proxy work, to set against nginx proxying the same request.
import { readFileSync } from 'node:fs';
import { createSecureServer } from 'node:http2';

const port = Number(process.env.PORT);
const body = readFileSync(process.env.BODY_FILE);
const server = createSecureServer({ cert: readFileSync(process.env.CERT), key: readFileSync(process.env.KEY) });
server.on('stream', (stream) => {
  stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': body.length });
  stream.end(body);
});
server.listen(port, '127.0.0.1', () => process.stdout.write(`listening ${port}\n`));
