import type { Logger } from 'pino';
import type { TCServerHandler } from '../../runtime/rtmfp/tc-server.ts';

/**
 * A TC handler in plain JS, without apps or a sandbox, for tests and benchmarks of the RTMFP
 * layer alone: accepts every connect and answers `echo` with its arguments (one argument →
 * that value, several → an array). Other calls fail clearly.
 */
export function echoApp(log: Logger): TCServerHandler {
  return {
    connect(conn, request) {
      log.info({ peer: conn.peerId.slice(0, 16), app: request.app }, 'connect');
      conn.accept();
    },
    call(_conn, name, args, reply) {
      if (name === 'echo') reply?.result(args.length === 1 ? args[0] : args);
      else reply?.error(`Method not found: ${name}`);
    },
    closed(conn) {
      log.info({ peer: conn.peerId.slice(0, 16) }, 'disconnect');
    },
  };
}
