/**
 * @module The `portico` command: argument parsing and dispatch to subcommands.
 */
import { parseArgs } from 'node:util';
import { LOG_LEVELS, type LogLevel } from '../observe/logger.ts';

const USAGE = `Usage: portico <command> [options]

Commands:
  start      Run Portico with a config file (default ./portico.yaml)
  validate   Check a config file and print every problem with its file, line and path
  schema     Print the config file's JSON Schema (for editors)
  demo       Start demo backends and Portico with examples/demo.yaml, and print URLs to try
  hash-password
             Read a password from standard input and print its scrypt hash for a consumer's basicAuth
  help       Show this help

Options:
  -c, --config FILE      Config file (default: ./portico.yaml)
      --log-level LEVEL  trace | debug | info | warn | error | fatal | silent (default: info)
  -h, --help             Show this help
`;

export async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    process.stderr.write(`portico: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0] ?? 'help';
  if (values.help || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const level = values['log-level'] as LogLevel;
  if (!LOG_LEVELS.includes(level)) {
    process.stderr.write(`portico: unknown log level "${level}" (use one of ${LOG_LEVELS.join(', ')})\n`);
    return 2;
  }
  const config = values.config;
  switch (command) {
    case 'start': {
      const { runStart } = await import('./start.ts');
      return runStart({ config, logLevel: level });
    }
    case 'validate': {
      const [{ runValidate }, { configValidators }] = await Promise.all([
        import('./validate.ts'),
        import('../runtime/validators.ts'),
      ]);
      return runValidate(config, { validators: configValidators() });
    }
    case 'schema': {
      const { runSchema } = await import('./schema.ts');
      return runSchema();
    }
    case '__load-config': {
      const { runLoadConfig } = await import('./load-config.ts');
      return runLoadConfig(config);
    }
    case 'hash-password': {
      const { runHashPassword } = await import('./hash-password.ts');
      return runHashPassword();
    }
    case 'demo': {
      const { runDemo } = await import('./demo.ts');
      return runDemo({ logLevel: level });
    }
    default:
      process.stderr.write(`portico: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c', default: 'portico.yaml' },
      'log-level': { type: 'string', default: 'info' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}
