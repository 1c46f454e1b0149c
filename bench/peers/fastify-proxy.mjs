// Peer for bench/run.sh: fastify + @fastify/http-proxy proxying every path to TARGET on 127.0.0.1:PORT.
// Logger off (fastify's default); the proxy uses undici with keep-alive, its default.
import proxy from '@fastify/http-proxy';
import Fastify from 'fastify';

const port = Number(process.env.PORT);
const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
await app.register(proxy, { upstream: process.env.TARGET });
await app.listen({ port, host: '127.0.0.1' });
process.stdout.write(`listening ${port}\n`);
