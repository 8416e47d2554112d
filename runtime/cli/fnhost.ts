#!/usr/bin/env node
import { parseArgs } from 'node:util';
import pino from 'pino';
import { builtinApp } from '../host/builtin-app.ts';
import { type ListenAddress, RtmfpNode } from '../host/node.ts';
import { formatAddress } from '../rtmfp/address.ts';

const USAGE = `fnhost — serverless functions on RTMFP nodes

usage:
  fnhost dev [dir] [--rtmfp HOST:PORT]   run one standalone node (default 0.0.0.0:1935)
  fnhost help                            this text
`;

/** A CLI mistake: printed without a stack trace, exit code 2. */
class UsageError extends Error {}

function parseListen(text: string): ListenAddress {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:]+):(\d+)$/.exec(text);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || !(port >= 0 && port < 65536))
    throw new UsageError(`--rtmfp must be HOST:PORT (or [v6]:PORT), got "${text}"`);
  return { host: m[1], port };
}

async function dev(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { rtmfp: { type: 'string', multiple: true }, json: { type: 'boolean' } },
  });
  const listen = (values.rtmfp ?? ['0.0.0.0:1935']).map(parseListen);
  const logger = pino({ level: process.env.FNHOST_LOG_LEVEL ?? 'info' }, pino.destination(2));
  const node = new RtmfpNode({ listen, handler: builtinApp(logger), logger });
  const bound = await node.start();
  for (const a of bound) process.stdout.write(`rtmfp listening on udp://${formatAddress(a)}\n`);
  logger.info({ fingerprint: node.fingerprint }, 'node ready');
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, ...node.stats() }, 'shutting down');
    await node.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

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
    (e instanceof TypeError && 'code' in e && String(e.code).startsWith('ERR_PARSE_ARGS'))
  ) {
    process.stderr.write(`fnhost: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`fnhost: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
