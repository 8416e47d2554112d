/**
 * Run by `npm test` before the tests (package.json): the contract, integration and end-to-end
 * tests start a real redis-server, and without one dozens of them fail or are cancelled with
 * errors that do not say why. This says it in one line and stops.
 */
import { spawnSync } from 'node:child_process';
import { REDIS_SERVER } from './redis.ts';

if (spawnSync(REDIS_SERVER, ['--version'], { stdio: 'ignore' }).error) {
  process.stderr.write(
    `npm test needs redis-server on PATH, "${REDIS_SERVER}" was not found ` +
      '(Debian/Ubuntu: apt-get install -y redis-server; macOS: brew install redis; or set REDIS_SERVER=/path/to/redis-server)\n',
  );
  process.exit(1);
}
