// Peer for bench/run.sh: fast-gateway proxying every path to TARGET, listening on 127.0.0.1:PORT.
// Defaults only (no logging, no middlewares), as its README shows.
import gateway from 'fast-gateway';

const port = Number(process.env.PORT);
const server = gateway({ routes: [{ prefix: '', pathRegex: '/*', target: process.env.TARGET }] });
await server.start(port, '127.0.0.1');
process.stdout.write(`listening ${port}\n`);
