/**
 * Preloaded into a CLI run with `--import`: on exit it prints on stderr every module the
 * process loaded, one `loaded: URL` line each, so a test can see what a command never loaded.
 */
import { registerHooks } from 'node:module';

const loaded: string[] = [];
registerHooks({
  load(url, context, next) {
    loaded.push(url);
    return next(url, context);
  },
});
process.on('exit', () => {
  process.stderr.write(loaded.map((url) => `loaded: ${url}\n`).join(''));
});
