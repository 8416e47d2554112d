import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../runtime/cli/node-flags.ts';

/**
 * `fnhost dev` as a user runs it, for benchmarks that load a whole node from outside (tcload):
 * the real CLI, app bundle, sandbox and stream layer, in a process whose CPU and memory are its
 * own. The app is `export default {}` (no handlers: publish and play are let in).
 */

const CLI = fileURLToPath(new URL('../../runtime/cli/fnhost.ts', import.meta.url));
const APP_NAME = 'bench';
const START_TIMEOUT_MS = 30_000;
const EXIT_TIMEOUT_MS = 5_000;

export interface DevProcess {
  pid: number;
  /** `rtmfp://127.0.0.1:PORT/bench` */
  url: string;
  stop(): Promise<void>;
}

async function end(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Starts `fnhost dev` on a free port of 127.0.0.1 and resolves once it printed its URL. */
export async function startDevProcess(): Promise<DevProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fnhost-bench-dev-'));
  mkdirSync(path.join(dir, 'functions'));
  writeFileSync(path.join(dir, 'wrangler-like.toml'), `name = "${APP_NAME}"\n`);
  writeFileSync(path.join(dir, 'functions', 'index.ts'), 'export default {};\n');
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, 'dev', '--rtmfp', '127.0.0.1:0', '--json'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  // The bench exits as soon as its table is out, even with a step still running: take the node along.
  const orphan = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', orphan);
  const stop = async () => {
    process.off('exit', orphan);
    await end(child);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(
        () => reject(new Error(`fnhost dev printed no URL in ${START_TIMEOUT_MS / 1000} s: ${out}`)),
        START_TIMEOUT_MS,
      );
      child.once('exit', (code) =>
        reject(new Error(`fnhost dev exited (${code}) before it listened: ${out}`)),
      );
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const first = out.split('\n');
        if (first.length < 2) return;
        clearTimeout(timer);
        try {
          resolve((JSON.parse(first[0]) as { url: string }).url);
        } catch {
          reject(new Error(`fnhost dev's first line is not JSON: ${first[0]}`));
        }
      });
    });
    child.stdout?.resume();
    return { pid: child.pid ?? -1, url, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
