import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { NODE_FLAGS } from '../../runtime/cli/node-flags.ts';

/** The `fnhost` command as users run it (the test's Node, isolated-vm's flag). */
const CLI = fileURLToPath(new URL('../../runtime/cli/fnhost.ts', import.meta.url));

export interface NodeProcess {
  child: ChildProcess;
  id: string;
  /** `host:port` */
  rtmfp: string;
  /** `host:port` */
  http: string;
  /** What it wrote on stderr so far (its log). */
  errors(): string;
}

/** What `fnhost node --json` printed so far: its JSON lines, merged. */
export interface NodePrinted {
  http?: string;
  node?: string;
  rtmfp?: string[];
}

/** Merges the complete JSON lines of `out` (the last piece may be half a line); throws on a line that is not JSON. */
export function nodePrinted(out: string): NodePrinted {
  return Object.assign(
    {},
    ...out
      .split('\n')
      .slice(0, -1)
      .map((line) => JSON.parse(line)),
  );
}

/**
 * `fnhost node --json` as a real process on 127.0.0.1 (free ports), run in `dir` (its config);
 * resolves once it printed its addresses and id (JSON lines on stdout). The caller kills it.
 */
export async function startNodeProcess(dir: string, args: string[]): Promise<NodeProcess> {
  const run = spawnCli(dir, ['node', '--rtmfp', '127.0.0.1:0', '--http', '127.0.0.1:0', '--json', ...args]);
  const { child } = run;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node did not start: ${run.output()}`)), 20_000);
    child.once('exit', (code) => reject(new Error(`node exited (${code}): ${run.output()}${run.errors()}`)));
    child.stdout?.on('data', () => {
      let printed: NodePrinted;
      try {
        printed = nodePrinted(run.output());
      } catch {
        reject(new Error(`node printed a line that is not JSON: ${run.output()}`));
        return;
      }
      if (printed.rtmfp && printed.http && printed.node) {
        clearTimeout(timer);
        resolve({ child, id: printed.node, rtmfp: printed.rtmfp[0], http: printed.http, errors: run.errors });
      }
    });
  });
}

/** What a CLI run gets besides its arguments. */
export interface CliOptions {
  /** Written to its stdin, which is then closed (default: closed at once). */
  stdin?: string;
  /** Added to its environment. */
  env?: NodeJS.ProcessEnv;
}

/** A CLI run that takes longer than this is hung (e.g. a store connection left open). */
const RUN_TIMEOUT_MS = 15_000;

/**
 * The environment a user's shell would give: this process's, without its FNHOST_* settings,
 * so a developer's own FNHOST_REDIS cannot change what a test runs against.
 */
function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const own = Object.entries(process.env).filter(([k]) => !k.startsWith('FNHOST_'));
  return { ...Object.fromEntries(own), ...extra };
}

/** `fnhost CMD …` left running (`tail`, `dev`); `output()`/`errors()` are what it printed so far. */
export function spawnCli(
  dir: string,
  args: string[],
  o: CliOptions = {},
): { child: ChildProcess; output(): string; errors(): string } {
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], {
    cwd: dir,
    env: cliEnv(o.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.end(o.stdin ?? '');
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err += c;
  });
  return { child, output: () => out, errors: () => err };
}

/** `fnhost CMD …` in `dir`; resolves with its exit code and output, or rejects if it hangs. */
export async function cli(
  dir: string,
  args: string[],
  o: CliOptions = {},
): Promise<{ code: number | null; out: string; err: string }> {
  const run = spawnCli(dir, args, o);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), RUN_TIMEOUT_MS);
  const [code, signal] = (await once(run.child, 'exit')) as [number | null, string | null];
  clearTimeout(timer);
  if (signal === 'SIGKILL')
    throw new Error(
      `fnhost ${args.join(' ')} did not exit within ${RUN_TIMEOUT_MS} ms\n${run.output()}${run.errors()}`,
    );
  return { code, out: run.output(), err: run.errors() };
}

/** Sends `signal` unless the process already exited, and waits for its exit; resolves with its code. */
export async function endProcess(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, 'exit');
  child.kill(signal);
  const [code] = (await exited) as [number | null];
  return code;
}
