/**
 * Conformance: how the real `portico validate` and `portico start` report a bad config. Every problem comes
 * with its file, line, column and YAML path, all in one run, as one line each, exit code 1 and never a stack
 * trace; hostile YAML (alias bombs, huge or non-UTF-8 files) fails fast; a SIGHUP reload with any of these
 * keeps the running config serving, and a good file after a bad one applies.
 * What the golden fixtures (test/unit/config/golden.test.ts) already cover is not repeated here.
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';
import { type PorticoProcess, runPortico, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';

const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;

const GOOD = (body: string, port = 0) => `listeners:
  - { name: web, protocol: http, address: 127.0.0.1:${port} }
routes:
  - name: all
    respond: { status: 200, body: ${JSON.stringify(body)} }
`;

/** A billion-laughs document: nine aliases of nine aliases of … (9^9 strings if expanded). */
const ALIAS_BOMB = `${[
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...'bcdefgh'.split('').map((c, i) => {
    const prev = 'abcdefg'[i];
    return `${c}: &${c} [${Array(9).fill(`*${prev}`).join(',')}]`;
  }),
].join('\n')}\nlisteners: [*h]\n`;

/** Far larger than any real config (some 5 MiB of routes). */
function hugeConfig(): string {
  const routes = Array.from(
    { length: 80_000 },
    (_, i) => `  - { name: r${i}, match: { path: /p${i} }, respond: { status: 200 } }`,
  );
  return `${GOOD('x')}${routes.join('\n')}\n`;
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'portico-conf-config-'));
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Writes `content` as `name` in a fresh directory and runs `portico validate -c` on it. */
async function validate(content: string | Buffer, env: Record<string, string> = {}, name = 'portico.yaml') {
  const dir = await tempDir();
  const file = join(dir, name);
  await writeFile(file, content);
  return { file, ...(await runPortico(['validate', '-c', file], { env })) };
}

/** Exit 1, nothing on stdout, every stderr line `FILE[:line:col] message`, no stack trace. Returns the lines. */
function failedCleanly(res: Run, file: string): string[] {
  assert.equal(res.code, 1, `exit code; stderr: ${res.stderr}`);
  assert.equal(res.stdout, '');
  assert.doesNotMatch(res.stderr, /\n\s+at |unexpected error|Error:/, 'no stack trace or raw error');
  const lines = res.stderr.trimEnd().split('\n');
  for (const line of lines) assert.ok(line.startsWith(`${file}`), `every line names the file: ${line}`);
  return lines.map((l) => l.slice(file.length));
}

describe('YAML syntax errors: file:line:col, one clear message, exit 1', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['bad indentation', 'listeners:\n  - name: web\n   protocol: http\n', /^:3:1 YAML: /],
    ['unclosed quote', 'listeners:\n  - { name: "web, protocol: http }\n', /^:3:1 YAML: Missing closing "quote/],
    ['unclosed bracket', 'listeners: [ { name: web\nroutes: []\n', /^:2:1 YAML: Flow map .* end with a }/],
    ['a tab in the indentation', 'listeners:\n\t- { name: web }\n', /^:2:1 YAML: Tabs are not allowed as indentation/],
    ['a duplicate key', 'listeners:\n  - name: web\n    name: web2\n', /^:3:5 YAML: Map keys must be unique/],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a config reference
    ['an unquoted ${VAR} in a flow map', 'listeners: [ { address: ${ADDR} } ]\n', /^:1:\d+ YAML: /],
    ['a second document', `${GOOD('x')}---\nfoo: 1\n`, /^:6:1 YAML: a config file holds one YAML document/],
  ];
  for (const [what, text, first] of cases) {
    it(what, async () => {
      const res = await validate(text);
      const lines = failedCleanly(res, res.file);
      assert.match(lines[0]!, first, res.stderr);
    });
  }

  it('an alias bomb ("billion laughs") fails at once, at an alias, without a stack trace', async () => {
    const res = await validate(ALIAS_BOMB);
    const lines = failedCleanly(res, res.file);
    assert.deepEqual(lines.length, 1, res.stderr);
    assert.match(lines[0]!, /^:3:\d+ YAML: aliases expand to too much data .*billion laughs/);
  });

  it('aliases that expand a little still work', async () => {
    const ok = await validate(
      'listeners:\n  - &l { name: a, protocol: http, address: "127.0.0.1:1" }\n  - { <<: *l, name: b, address: "127.0.0.1:2" }\n',
    );
    assert.equal(ok.code, 0, ok.stderr);
  });

  it('deep nesting is a YAML error, not a crash', async () => {
    const res = await validate(`a: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`);
    const lines = failedCleanly(res, res.file);
    assert.match(lines[0]!, /^:1:\d+ YAML: /);
  });

  it('a huge file is refused by its size before it is parsed', async () => {
    const res = await validate(hugeConfig());
    const lines = failedCleanly(res, res.file);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^ the config file is \d+ bytes; the limit is 4194304 \(is it the right file\?\)$/);
  });
});

describe('independent errors in one file are all reported, each at its line and path', () => {
  it('unknown key, wrong type, bad duration and size, unknown upstream, duplicates, CIDR, regex, URL, host', async () => {
    const res = await validate(`listeners:
  - name: web
    protocol: http
    address: 127.0.0.1:8080
    trustedProxies: [ 10.0.0.0/33, not-an-ip ]
    bogusKey: 1
  - name: web
    protocol: http
    address: 127.0.0.1:8080
    allow: [ 300.1.1.1 ]
upstreams:
  - name: users
    targets: [ { url: "http://" }, { url: "not a url" } ]
    timeouts: { connect: 5 parsecs, response: true }
    maxConnectionsPerTarget: many
routes:
  - name: a
    upstream: usres
    rewrite: { regex: { pattern: "(unclosed", replacement: x } }
    limits: { maxBodySize: 10 zettabytes }
  - name: b
    upstream: users
    redirectx: 1
    deny: [ "10.0.0.0/8/9" ]
    match: { host: [ ok.example.com, "127.0.0.1:80" ] }
admin: { address: "127.0.0.1:8080" }
`);
    const lines = failedCleanly(res, res.file);
    assert.deepEqual(lines, [
      ':5:23 listeners[0].trustedProxies[0]: "10.0.0.0/33" has an invalid prefix length (0 to 32 for IPv4)',
      ':5:36 listeners[0].trustedProxies[1]: "not-an-ip" is not an IP address or CIDR block (e.g. 10.0.0.0/8, ::1)',
      ':6:5 listeners[0].bogusKey: unknown key',
      ':7:11 listeners[1].name: duplicate listener name "web" (also listeners[0])',
      ':9:14 listeners[1].address: duplicate listener address "127.0.0.1:8080" (also listeners[0])',
      ':10:14 listeners[1].allow[0]: "300.1.1.1" is not an IP address or CIDR block (e.g. 10.0.0.0/8, ::1)',
      ':13:23 upstreams[0].targets[0].url: expected a URL such as http://host:port',
      ':13:43 upstreams[0].targets[1].url: expected a URL such as http://host:port',
      ':14:26 upstreams[0].timeouts.connect: invalid duration "5 parsecs" (use e.g. 250ms, 5s, 1m, 2h)',
      ':14:47 upstreams[0].timeouts.response: expected a duration such as 250ms, 5s, 1m (got a boolean)',
      ':15:30 upstreams[0].maxConnectionsPerTarget: expected a number, got a string',
      ':18:15 routes[0].upstream: unknown upstream "usres" (did you mean "users"?)',
      ':19:34 routes[0].rewrite.regex.pattern: invalid regular expression: /(unclosed/: Unterminated group',
      ':20:28 routes[0].limits.maxBodySize: invalid size "10 zettabytes" (use e.g. 512, 64KiB, 10MiB)',
      ':23:5 routes[1].redirectx: unknown key (did you mean "redirect"?)',
      ':24:13 routes[1].deny[0]: "10.0.0.0/8/9" has an invalid prefix length (0 to 32 for IPv4)',
      ':25:38 routes[1].match.host[1]: invalid host "127.0.0.1:80" (use example.com or *.example.com)',
      ":26:19 admin.address: admin address 127.0.0.1:8080 is also listeners[0]'s address",
    ]);
  });

  it('a header value with a line break is refused at its line (it would fail every request)', async () => {
    const res = await validate(
      `${GOOD('x')}    headers: { response: { set: { x-a: "\${INJECT}", x-b: "caf\u00e9", x-c: "\u2713" } } }\n`,
      { INJECT: 'a\r\nset-cookie: evil=1' },
    );
    const lines = failedCleanly(res, res.file);
    const msg = 'not a valid header value: no line breaks, control characters or characters beyond U+00FF';
    assert.deepEqual(lines, [
      `:6:40 routes[0].headers.response.set.x-a: ${msg}`,
      `:6:71 routes[0].headers.response.set.x-c: ${msg}`,
    ]);
  });
});

describe('environment variable references', () => {
  // biome-ignore-start lint/suspicious/noTemplateCurlyInString: config references
  const TEXT = `listeners:
  - { name: web, protocol: http, address: "\${ADDR}" }
routes:
  - name: all
    respond: { status: 200, body: "\${BODY}|$\${LITERAL}|\${EMPTY:-fallback}|\${EMPTY}" }
    headers: { response: { set: { x-a: "\${MISSING}" } } }
`;
  // biome-ignore-end lint/suspicious/noTemplateCurlyInString: config references

  it('a missing variable is an error at its value; an empty one is a plain empty string', async () => {
    const res = await validate(TEXT, { ADDR: '127.0.0.1:1', BODY: 'b', EMPTY: '' });
    const lines = failedCleanly(res, res.file);
    assert.deepEqual(lines, [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the message shows the syntax
      ':6:40 routes[0].headers.response.set.x-a: environment variable MISSING is not set (use ${MISSING:-default} for a default)',
    ]);
  });

  it('an empty value where a value is needed is reported with the path', async () => {
    const res = await validate(TEXT, { ADDR: '', BODY: 'b', MISSING: 'm', EMPTY: '' });
    const lines = failedCleanly(res, res.file);
    assert.deepEqual(lines, [':2:43 listeners[0].address: expected host:port, e.g. 127.0.0.1:8080']);
  });

  it('a value that looks like YAML stays one plain string (no structure injected)', async () => {
    const inject = 'x\nlisteners: []\n- [a, b]\n  "q": {z: 1}';
    const bad = await validate(TEXT, { ADDR: '127.0.0.1:1, protocol: tcp', BODY: 'b', MISSING: 'm', EMPTY: '' });
    assert.deepEqual(failedCleanly(bad, bad.file), [
      ':2:43 listeners[0].address: expected host:port, e.g. 127.0.0.1:8080',
    ]);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a config reference
    const p = await startPortico(TEXT.replace('${ADDR}', '127.0.0.1:0'), {
      env: { BODY: inject, MISSING: 'm', EMPTY: '' },
    });
    try {
      const res = await fetch(p.url());
      assert.equal(res.status, 200);
      assert.equal(await res.text(), `${inject}|\${LITERAL}|fallback|`);
    } finally {
      await p.stop();
    }
  });
});

describe('files that are not a config', () => {
  const cases: Array<[string, string | Buffer, string]> = [
    ['an empty file', '', ':1:1 the config file is empty'],
    ['only comments', '# nothing\n', ':1:1 the config file is empty'],
    ['a list', '- a\n- b\n', ':1:1 the file must hold a map of sections, got a list'],
    ['a scalar', 'hello\n', ':1:1 the file must hold a map of sections, got a string'],
    [
      'a Latin-1 byte in a header value',
      Buffer.concat([Buffer.from(`${GOOD('x')}    headers: { response: { set: { x-a: caf`), Buffer.from([0xe9, 0x20])]),
      ':6:43 the file is not valid UTF-8 (save it as UTF-8)',
    ],
    ['UTF-16', Buffer.from(`\ufeff${GOOD('x')}`, 'utf16le'), ':1:1 the file is not valid UTF-8 (save it as UTF-8)'],
  ];
  for (const [what, content, expected] of cases) {
    it(what, async () => {
      const res = await validate(content);
      assert.deepEqual(failedCleanly(res, res.file), [expected]);
    });
  }

  it('a U+FFFD written in UTF-8 is a character like any other', async () => {
    const res = await validate(GOOD('\ufffd'));
    assert.equal(res.code, 0, res.stderr);
  });

  it('a missing file, a directory, an unreadable file: one line each', async (t) => {
    const dir = await tempDir();
    const missing = await runPortico(['validate', '-c', join(dir, 'nope.yaml')]);
    assert.deepEqual(failedCleanly(missing, join(dir, 'nope.yaml')), [' cannot read config file: no such file']);
    const asDir = await runPortico(['validate', '-c', dir]);
    assert.deepEqual(failedCleanly(asDir, dir), [' cannot read config file: is a directory']);
    if (process.getuid?.() === 0) {
      t.diagnostic('running as root: every file is readable, skipping the unreadable case');
      return;
    }
    const locked = join(dir, 'locked.yaml');
    await writeFile(locked, GOOD('x'));
    await chmod(locked, 0o000);
    const res = await runPortico(['validate', '-c', locked]);
    assert.deepEqual(failedCleanly(res, locked), [' cannot read config file: permission denied']);
  });
});

/** Replaces the config file (or turns it into a directory), sends SIGHUP and waits for the outcome. */
async function reloadWith(p: PorticoProcess, content: string | Buffer | 'directory'): Promise<string> {
  const before = p.lines.length;
  const stderrBefore = p.stderr.length;
  await rm(p.configPath, { recursive: true, force: true });
  if (content === 'directory') await mkdir(p.configPath);
  else await writeFile(p.configPath, content);
  p.child.kill('SIGHUP');
  const line = await p.waitFor(
    (l) => p.lines.indexOf(l) >= before && (l.msg === 'reloaded' || String(l.msg).startsWith('reload failed')),
  );
  if (line.msg === 'reloaded') {
    p.ports = line.listeners as Record<string, number>;
    return 'reloaded';
  }
  // The stderr report follows the log line; wait for it (bounded).
  for (let i = 0; i < 100 && !p.stderr.slice(stderrBefore).includes(p.configPath); i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return p.stderr.slice(stderrBefore);
}

describe('portico start and reload with a bad config', () => {
  const BROKEN: Array<[string, string | Buffer | 'directory', RegExp]> = [
    ['YAML syntax', 'listeners: [ { name: web\n', /:2:1 YAML: /],
    ['alias bomb', ALIAS_BOMB, /:3:\d+ YAML: aliases expand to too much data/],
    ['many errors', `${GOOD('v2')}    bogus: 1\n    upstream: nope\n`, /:6:5 routes\[0\]\.bogus: unknown key/],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a config reference
    ['unset variable', GOOD('${PORTICO_CONF_TEST_UNSET}'), /:5:\d+ routes\[0\]\.respond\.body: environment variable/],
    ['empty file', '', /:1:1 the config file is empty/],
    ['a list', '- a\n', /:1:1 the file must hold a map of sections, got a list/],
    ['not UTF-8', Buffer.from([0x6c, 0xe9, 0x0a]), /:1:2 the file is not valid UTF-8/],
    ['a directory', 'directory', / cannot read config file: is a directory/],
    [
      'an invalid route host',
      `${GOOD('v2')}    match: { host: "a b" }\n`,
      /:6:20 routes\[0\]\.match\.host: invalid host/,
    ],
    ['a huge file', hugeConfig(), / the config file is \d+ bytes; the limit is/],
  ];

  it('start exits 1 with the same lines as validate and binds nothing', async () => {
    const port = await freePort();
    for (const [what, content, expected] of BROKEN) {
      if (content === 'directory') continue;
      const dir = await tempDir();
      const file = join(dir, 'portico.yaml');
      // A listener that would bind, on a known port, before the broken part.
      const text =
        typeof content === 'string' && what === 'many errors' ? content.replace(':0 }', `:${port} }`) : content;
      await writeFile(file, text);
      const start = await runPortico(['start', '-c', file]);
      const check = await runPortico(['validate', '-c', file]);
      assert.equal(start.code, 1, `${what}: ${start.stderr}`);
      assert.doesNotMatch(start.stderr, /\n\s+at |unexpected error/, what);
      assert.doesNotMatch(start.stdout, /"started"/, what);
      assert.match(start.stderr, expected, what);
      const validateLines = check.stderr.trimEnd().split('\n');
      for (const line of validateLines) assert.ok(start.stderr.includes(line), `${what}: start shows ${line}`);
    }
  });

  it('a reload with each broken variant keeps serving the old config; a good one then applies', async (t) => {
    const p = await startPortico(GOOD('v1'));
    t.after(async () => {
      await p.stop();
    });
    const port = p.port();
    for (const [what, content, expected] of BROKEN) {
      const report = await reloadWith(p, content);
      assert.notEqual(report, 'reloaded', what);
      assert.match(report, /reload failed, keeping the running config/, what);
      assert.match(report, expected, `${what}: ${report}`);
      assert.doesNotMatch(report, /\n\s+at /, what);
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(res.status, 200, what);
      assert.equal(await res.text(), 'v1', `${what}: the old config still answers`);
    }
    assert.equal(await reloadWith(p, GOOD('v2')), 'reloaded');
    assert.equal(p.port(), port);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'v2');
  });
});

describe('portico schema', () => {
  it('is a JSON Schema that accepts every example file as written', async () => {
    const res = await runPortico(['schema']);
    assert.equal(res.code, 0, res.stderr);
    const ajv = new Ajv2020({ strict: false, validateFormats: false });
    const check = ajv.compile(JSON.parse(res.stdout) as object);
    const files = (await readdir(EXAMPLES)).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length > 0);
    for (const file of files) {
      const doc = parseYaml(await readFile(join(EXAMPLES, file), 'utf8'), { merge: true }) as unknown;
      assert.ok(check(doc), `${file}: ${JSON.stringify(check.errors, null, 1)}`);
    }
    assert.equal(check({ listeners: [{ name: 'web', protocol: 'http', address: ':1', bogus: 1 }] }), false);
  });
});
