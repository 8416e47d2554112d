import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import puppeteer, { type Browser } from 'puppeteer-core';

/** The Chromium the browser tests drive: CHROMIUM, else Debian's `chromium` on PATH. */
export const CHROMIUM = process.env.CHROMIUM ?? 'chromium';

/**
 * Launches headless Chromium through puppeteer-core. Without it the test fails with one line
 * saying what to install (like require-redis.ts), never a silent skip.
 */
export async function launchChromium(chromium = CHROMIUM): Promise<Browser> {
  const executablePath = findExecutable(chromium);
  if (!executablePath)
    throw new Error(
      `the dashboard test needs Chromium, "${chromium}" was not found ` +
        '(Debian/Ubuntu: apt-get install -y chromium; or set CHROMIUM=/path/to/chromium)',
    );
  return puppeteer.launch({
    executablePath,
    headless: true,
    // As root (CI, containers) Chromium refuses to start with its sandbox; the page is our own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

/** `name` as a path, or where it is on PATH; undefined when there is no such executable. */
function findExecutable(name: string): string | undefined {
  const candidates = name.includes('/')
    ? [name]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, name));
  return candidates.find((path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
