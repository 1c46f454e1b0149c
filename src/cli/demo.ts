/**
 * @module `portico demo` (what `npm start` runs): demo backends + Portico with examples/demo.yaml, and the URLs
 * and curl commands that show the three roles at work.
 */
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { loadConfigFile } from '../config/loader.ts';
import { createLogger, flushLogger, type LogLevel } from '../observe/logger.ts';
import { Runtime } from '../runtime/runtime.ts';
import { configValidators } from '../runtime/validators.ts';
import { startDemoBackends } from './demo-backends.ts';
import { describeStartError } from './start.ts';

const DEMO_CONFIG = fileURLToPath(new URL('../../examples/demo.yaml', import.meta.url));
const DEFAULT_KEY = 'demo-key-acme-0001';
const DEFAULT_SECRET = 'demo-secret-please-change-me-0123456789';

export async function runDemo(options: { logLevel: LogLevel }): Promise<number> {
  const backends = await startDemoBackends();
  const env: Record<string, string | undefined> = {
    ...process.env,
    USERS_1: String(backends[0]!.port),
    USERS_2: String(backends[1]!.port),
    USERS_3: String(backends[2]!.port),
    ORDERS: String(backends[3]!.port),
  };
  // The demo prints the access log only when asked: the URLs are the point.
  const log = createLogger(options.logLevel === 'info' ? 'warn' : options.logLevel);
  const runtime = new Runtime(log);
  try {
    const config = await loadConfigFile(DEMO_CONFIG, { env, validators: configValidators() });
    await runtime.start(config);
  } catch (err) {
    process.stderr.write(`portico demo: cannot start: ${describeStartError(err, DEMO_CONFIG)}\n`);
    for (const b of backends) b.server.close();
    return 1;
  }
  const base = `http://127.0.0.1:${runtime.ports().web}`;
  const admin = `http://${runtime.adminAddress()}`;
  const key = env.DEMO_API_KEY ?? DEFAULT_KEY;
  const token = await new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('portico-demo')
    .setAudience('orders')
    .setSubject('carol')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(env.DEMO_JWT_SECRET ?? DEFAULT_SECRET));
  // Handlers first: whoever reads the text below may stop the demo at once (see start.ts).
  const stopped = new Promise<number>((resolve) => {
    const stop = (): void => {
      runtime.shutdown().then(() => {
        for (const b of backends) b.server.close();
        flushLogger(log);
        resolve(0);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stdout.write(demoText(base, admin, key, token));
  return stopped;
}

function demoText(base: string, admin: string, key: string, token: string): string {
  return `
Portico demo is running on ${base}  (config: examples/demo.yaml; Ctrl-C to stop)

Load balancer — three users replicas, least-request, health-checked (run it a few times; "replica" changes):
  curl -s ${base}/users/42

Reverse proxy — /users/* is rewritten to /v1/users/*, backend Server/X-Powered-By hidden, problem+json errors:
  curl -si ${base}/users/42 | head -12
  curl -si ${base}/nothing-here            # 404 application/problem+json with a request id
  curl -si '${base}/users/%2e%2e/secret'    # normalised before routing
  curl -s -o /dev/null -D - ${base}/catalog/ | grep x-cache   # MISS, then HIT (cached 30 s)
  curl -s -H 'accept-encoding: br' -D - -o /dev/null ${base}/users/42 | grep -i content-encoding

API gateway — API key, JWT, rate limit:
  curl -si ${base}/api/orders/                              # 401: no key
  curl -s  ${base}/api/orders/ -H 'x-api-key: ${key}'       # 200 as consumer "acme"
  curl -s  ${base}/jwt/orders/ -H 'authorization: Bearer ${token}'
  for i in 1 2 3 4; do curl -s -o /dev/null -w '%{http_code}\\n' ${base}/limited/x; done   # 200 200 200 429

Admin — metrics, targets and their health, the running config (secrets redacted):
  curl -s ${admin}/metrics | grep portico_http_requests_total
  curl -s ${admin}/upstreams

`;
}
