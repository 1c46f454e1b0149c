// Proves a server reads a POST body: two 16 KiB POSTs pipelined on one keep-alive connection must both get
// a 200. If the first body were left unread, its bytes would be parsed as the second request and fail.
// Usage: node check-post.mjs PORT PATH
import { connect } from 'node:net';

const [port, path] = [Number(process.argv[2]), process.argv[3]];
const body = 'x'.repeat(16 * 1024);
const req = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const sock = connect(port, '127.0.0.1', () => sock.write(req + req));
let got = '';
const timer = setTimeout(() => finish('timed out'), 5000);
sock.setEncoding('latin1');
sock.on('data', (d) => {
  got += d;
  if ((got.match(/^HTTP\/1\.1 /gm) ?? []).length >= 2) finish();
});
sock.on('error', (e) => finish(e.message));
sock.on('close', () => finish('connection closed'));
function finish(err) {
  clearTimeout(timer);
  sock.destroy();
  const statuses = [...got.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => m[1]);
  if (statuses.length === 2 && statuses.every((s) => s === '200')) process.exit(0);
  console.error(`POST body check failed on port ${port}: statuses [${statuses}]${err ? `, ${err}` : ''}`);
  process.exit(1);
}
