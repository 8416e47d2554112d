#!/usr/bin/env -S node --no-node-snapshot
import { ConfigError } from '../config/config.ts';
import { runCommand } from './cluster.ts';
import { deploy } from './deploy.ts';
import { dev } from './dev.ts';
import { node } from './node.ts';
import { rollback } from './rollback.ts';
import { secret } from './secret.ts';
import { status } from './status.ts';
import { tail } from './tail.ts';
import { versions } from './versions.ts';

const USAGE = `fnhost — serverless functions on RTMFP nodes

usage:
  fnhost dev [dir] [--rtmfp HOST:PORT]... [--config FILE] [--json]
      run one standalone node with the app in dir (default: main from wrangler-like.toml,
      else functions/), rebuilt and hot-swapped on every save
  fnhost node [--redis URL] [--rtmfp HOST:PORT]... [--http HOST:PORT] [--public-address HOST:PORT]
      run a cluster node: registers in Redis, runs every deployed app, follows deploys
  fnhost deploy [dir] [--app NAME] [--timeout SECONDS] [--json]
      bundle the app in dir (default: main), check that it starts, make it the active
      version and wait until every live node runs it (default timeout 10 s)
  fnhost versions [--app NAME] [--json]
      the app's deployed versions, newest first; * marks the active one
  fnhost rollback [VERSION] [--app NAME] [--timeout SECONDS] [--json]
      make VERSION (a hash prefix of 6+ digits; default: the one before the active one)
      active again and wait for the nodes
  fnhost status [--json]
      the live nodes: addresses, state, load, app versions, last heartbeat
  fnhost secret put NAME [--app NAME] < value
      store a secret (read from stdin) for the app; nodes pick it up on the next deploy
  fnhost tail [APP] [--json]
      stream the app's ctx.log lines from every node until Ctrl-C
  fnhost help      this text

Config comes from ./wrangler-like.toml, then FNHOST_* environment variables, then flags.
Cluster commands (deploy, versions, rollback, status, secret, tail) also take
--redis URL, --cluster NAME and --config FILE; they need a Redis ([cluster] redis).
`;

/** A CLI mistake: printed without a stack trace, exit code 2. */
class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'dev':
      return dev(rest);
    case 'node':
      return node(rest);
    case 'deploy':
      return runCommand(deploy, rest);
    case 'versions':
      return runCommand(versions, rest);
    case 'rollback':
      return runCommand(rollback, rest);
    case 'status':
      return runCommand(status, rest);
    case 'secret':
      return runCommand(secret, rest);
    case 'tail':
      return runCommand(tail, rest);
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
