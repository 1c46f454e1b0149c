/**
 * End to end through the real `portico` process: a `tcp` listener is a pure L4 load balancer in front of
 * real Redis servers, used by the real redis-cli; when one server dies, new connections go to the other.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startPortico } from '../helpers/portico.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

const run = promisify(execFile);

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

describe('L4 through the portico command', () => {
  it('redis-cli PING through a tcp listener, failing over when a server dies, and across a reload', async (t) => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    const yaml = (balance: string) => `
listeners:
  - { name: redis, protocol: tcp, address: 127.0.0.1:0, upstream: cache }
upstreams:
  - name: cache
    balance: ${balance}
    targets: [ { address: "127.0.0.1:${a.port}" }, { address: "127.0.0.1:${b.port}" } ]
    timeouts: { connect: 1s }
`;
    const p = await startPortico(yaml('round-robin'));
    t.after(async () => {
      await p.stop();
      await a.stop();
      await b.stop();
    });
    const port = p.port('redis');
    assert.equal(await cli(port, 'PING'), 'PONG');
    await cli(port, 'SET', 'k', 'v');
    await a.stop();
    for (let i = 0; i < 6; i++) assert.equal(await cli(port, 'PING'), 'PONG', `connection ${i} after a died`);
    const line = await p.reload(yaml('least-connections'));
    assert.equal(line.msg, 'reloaded');
    assert.equal(p.port('redis'), port, 'the tcp listener keeps its port across a reload');
    assert.equal(await cli(port, 'PING'), 'PONG');
  });
});
