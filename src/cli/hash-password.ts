/**
 * @module `portico hash-password`: reads a password on standard input (one line, or all of it from a pipe)
 * and prints the `scrypt:<salt>:<hash>` value a consumer's `basicAuth` entry takes, so no plain password has
 * to be written in a config file.
 */
import { text } from 'node:stream/consumers';
import { hashPassword } from '../gateway/basic-auth/password.ts';

export async function runHashPassword(): Promise<number> {
  if (process.stdin.isTTY) process.stderr.write('password: ');
  const input = (await text(process.stdin)).replace(/\r?\n$/, '');
  if (input === '') {
    process.stderr.write('portico: no password on standard input\n');
    return 1;
  }
  process.stdout.write(`${await hashPassword(input)}\n`);
  return 0;
}
