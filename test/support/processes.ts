import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

/** The `fnhost` command as users run it (the test's Node, isolated-vm's flag). */
const CLI = fileURLToPath(new URL('../../runtime/cli/fnhost.ts', import.meta.url));

export interface NodeProcess {
  child: ChildProcess;
  id: string;
  /** `host:port` */
  rtmfp: string;
  /** `host:port` */
  http: string;
}

/**
 * `fnhost node --json` as a real process on 127.0.0.1 (free ports), run in `dir` (its config);
 * resolves once it printed its addresses and id (JSON lines on stdout). The caller kills it.
 */
export async function startNodeProcess(dir: string, args: string[]): Promise<NodeProcess> {
  const child = spawn(
    process.execPath,
    ['--no-node-snapshot', CLI, 'node', '--rtmfp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json', ...args],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stderr?.resume();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start: ${out}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`node exited (${code}): ${out}`)));
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      let printed: { node?: string; rtmfp?: string[]; http?: string };
      try {
        // Complete lines only: the last piece may be half a line. With --json each is JSON.
        printed = Object.assign(
          {},
          ...out
            .split('\n')
            .slice(0, -1)
            .map((line) => JSON.parse(line)),
        );
      } catch {
        reject(new Error(`node printed a line that is not JSON: ${out}`));
        return;
      }
      if (printed.rtmfp && printed.http && printed.node) {
        clearTimeout(timer);
        resolve({ child, id: printed.node, rtmfp: printed.rtmfp[0], http: printed.http });
      }
    });
  });
}

/** `fnhost CMD …` left running (`tail`, `dev`); `output()`/`errors()` are what it printed so far. */
export function spawnCli(
  dir: string,
  args: string[],
): { child: ChildProcess; output(): string; errors(): string } {
  const child = spawn(process.execPath, ['--no-node-snapshot', CLI, ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  return { child, output: () => out, errors: () => err };
}

/** `fnhost CMD …` in `dir`; resolves with its exit code and output. */
export async function cli(dir: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const child = spawn(process.execPath, ['--no-node-snapshot', CLI, ...args], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  const [code] = (await once(child, 'exit')) as [number];
  return { code, out, err };
}
