/** @module A loopback address whose connects never complete, for connect-timeout tests. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * A listening socket that never accepts, with its accept queue filled, so new connects hang in SYN_SENT
 * (a loopback stand-in for an unreachable host). Uses python3 because Node always accepts.
 */
export async function blackhole(): Promise<{ port: number; close(): void }> {
  const child = spawn(
    'python3',
    [
      '-c',
      'import socket,sys,time\ns=socket.socket();s.bind(("127.0.0.1",0));s.listen(0)\nfill=[]\nfor i in range(8):\n  c=socket.socket();c.setblocking(False)\n  try: c.connect(s.getsockname())\n  except BlockingIOError: pass\n  fill.append(c)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(600)',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  return { port: Number(line.toString().trim()), close: () => child.kill('SIGKILL') };
}
