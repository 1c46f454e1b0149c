/**
 * @module Proves a server reads a POST body: two 16 KiB POSTs pipelined on one keep-alive connection must both
 * get a 200. Were the first body left unread, its bytes would be parsed as the second request and fail.
 * Usage: node bench/lib/check-post.ts PORT PATH (exit status 0 when both answers are 200).
 */
import { connect } from 'node:net';

const port = Number(process.argv[2]);
const path = process.argv[3] ?? '/post';
const body = 'x'.repeat(16 * 1024);
const request = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
const STATUS = /^HTTP\/1\.1 (\d{3})/gm;

let received = '';
let done = false;
const socket = connect(port, '127.0.0.1', () => socket.write(request + request));
const timer = setTimeout(() => finish('timed out'), 5000);
socket.setEncoding('latin1');
socket.on('data', (chunk: string) => {
  received += chunk;
  if (statuses().length >= 2) finish();
});
socket.on('error', (err) => finish(err.message));
socket.on('close', () => finish('connection closed'));

function statuses(): string[] {
  return [...received.matchAll(STATUS)].map((m) => m[1] ?? '');
}

function finish(problem?: string): void {
  if (done) return;
  done = true;
  clearTimeout(timer);
  socket.destroy();
  const got = statuses();
  if (got.length === 2 && got.every((s) => s === '200')) process.exit(0);
  process.stderr.write(`POST body check failed on port ${port}: statuses [${got}]${problem ? `, ${problem}` : ''}\n`);
  process.exit(1);
}
