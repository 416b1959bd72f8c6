#!/usr/bin/env node
/**
 * Prints a `password_hash` for the twin's `auth.users.<name>`: `npm run hash-password` (asks twice, without
 * echo) or `printf %s "$PW" | npm run -s hash-password` (reads standard input). The password is never taken
 * from the command line, where shell history and `ps` would keep it.
 */
import { createInterface } from 'node:readline';
import { hashPassword } from './passwordHash.js';

async function readPiped(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // One trailing newline is the pipe's, not the password's.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function ask(prompt: string): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    // Echo nothing while the password is typed.
    const output = rl as unknown as { _writeToOutput: (s: string) => void };
    process.stderr.write(prompt);
    output._writeToOutput = () => {};
    rl.question('', (answer) => {
      rl.close();
      process.stderr.write('\n');
      resolve(answer);
    });
  });
}

async function main(): Promise<number> {
  let password: string;
  if (process.stdin.isTTY) {
    password = await ask('Password: ');
    if ((await ask('Again: ')) !== password) {
      process.stderr.write('The two passwords differ.\n');
      return 1;
    }
  } else {
    password = await readPiped();
  }
  if (password.length < 8) {
    process.stderr.write('A password of fewer than 8 characters is refused.\n');
    return 1;
  }
  process.stdout.write(`${await hashPassword(password)}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`hash-password: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
