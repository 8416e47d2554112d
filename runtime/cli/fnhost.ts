#!/usr/bin/env -S node --no-node-snapshot
import { ConfigError } from '../config/config.ts';
import { dev } from './dev.ts';

const USAGE = `fnhost — serverless functions on RTMFP nodes

usage:
  fnhost dev [dir] [--rtmfp HOST:PORT]... [--config FILE] [--json]
      run one standalone node with the app in dir (default: main from wrangler-like.toml,
      else functions/), rebuilt and hot-swapped on every save
  fnhost help      this text

Config comes from ./wrangler-like.toml, then FNHOST_* environment variables, then flags.
`;

/** A CLI mistake: printed without a stack trace, exit code 2. */
class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dev':
      return dev(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return;
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  if (
    e instanceof UsageError ||
    e instanceof ConfigError ||
    (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))
  ) {
    process.stderr.write(`fnhost: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`fnhost: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
