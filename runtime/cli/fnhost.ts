#!/usr/bin/env -S node --no-node-snapshot --max-semi-space-size=1
import { readFileSync } from 'node:fs';
import { packageFile } from '../module-url.ts';
import { COMMANDS } from './commands.ts';

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
  const listed = COMMANDS.find((c) => c.name === name);
  if (!listed) {
    process.stderr.write(`fnhost: unknown command "${name}"\n\n${usage()}`);
    process.exit(2);
  }
  // Only now, and only this command's modules: the others never load.
  const [{ runCommand }, command] = await Promise.all([import('./command.ts'), listed.load()]);
  await runCommand(command, rest);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`fnhost: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
