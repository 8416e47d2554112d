#!/usr/bin/env -S node --no-node-snapshot --max-semi-space-size=1
import { readFileSync } from 'node:fs';
import { packageFile } from '../module-url.ts';
import { type Command, runCommand } from './command.ts';
import { deploy } from './deploy.ts';
import { dev } from './dev.ts';
import { init } from './init.ts';
import { node } from './node.ts';
import { drain, pause, resume } from './pause-drain.ts';
import { rollback } from './rollback.ts';
import { secret } from './secret.ts';
import { status } from './status.ts';
import { tail } from './tail.ts';
import { versions } from './versions.ts';

/** Every subcommand, in the order `fnhost --help` lists them. */
const COMMANDS: Command[] = [
  init,
  dev,
  node,
  deploy,
  versions,
  rollback,
  status,
  pause,
  resume,
  drain,
  secret,
  tail,
];

/** The overall usage: each command's forms and what it does, then what they share. */
function usage(): string {
  const commands = COMMANDS.map((c) => {
    const forms = c.synopsis.map((s) => `  fnhost ${s}\n`).join('');
    return `${forms}${c.about.replace(/^/gm, '      ')}\n`;
  });
  return `fnhost — serverless functions on RTMFP nodes

usage:
${commands.join('')}  fnhost COMMAND --help   that command's options
  fnhost --version        the version of fnhost

Config comes from ./wrangler-like.toml, then FNHOST_* environment variables, then flags.
`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return;
  }
  if (name === '--version' || name === '-v') {
    process.stdout.write(`fnhost ${version()}\n`);
    return;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`fnhost: unknown command "${name}"\n\n${usage()}`);
    process.exit(2);
  }
  await runCommand(command, rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`fnhost: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
