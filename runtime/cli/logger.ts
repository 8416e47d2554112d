import pino, { type Logger } from 'pino';
import { LOG_LEVEL_VARIABLE } from '../config/config.ts';

/**
 * The node's logger: human-readable lines when stderr is a terminal, JSON lines otherwise
 * (or with `json`), so scripts and log shippers get structure and people get prose.
 */
export function makeLogger(o: { json?: boolean; level?: string } = {}): Logger {
  const level = o.level ?? process.env[LOG_LEVEL_VARIABLE] ?? 'info';
  if (o.json || !process.stderr.isTTY) return pino({ level }, pino.destination({ fd: 2, sync: true }));
  return pino({
    level,
    transport: {
      target: 'pino-pretty',
      options: { destination: 2, colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' },
    },
  });
}
