import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A redis-server started for a test; `stop` (or process exit) always kills it. */
export interface TestRedis {
  /** `redis://[:password@]127.0.0.1:PORT` */
  url: string;
  port: number;
  /** Shuts it down and waits for the process to exit. Idempotent. */
  stop(): Promise<void>;
  /** Stops it and starts a fresh one on the same port (no persistence: data is gone). */
  restart(): Promise<void>;
  /** SIGKILL now, no waiting: a crash. */
  kill(): void;
  /** SIGSTOP: Redis hangs, its connections stay open and nothing is answered (a black hole). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface StartRedisOptions {
  /** `--requirepass`: clients must AUTH with it. */
  password?: string;
  /** Run a Sentinel (not a server) that monitors the master at 127.0.0.1:`masterPort` as `name`. */
  sentinel?: { masterPort: number; name: string };
}

/** The redis-server the tests start: REDIS_SERVER, else the one on PATH. */
export const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';
const START_TIMEOUT_MS = 5_000;
/** Another process may grab the free port between our probe and redis binding it. */
const START_ATTEMPTS = 3;

const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Spawns a real `redis-server` on a free port of 127.0.0.1 and waits until it answers PING. */
export async function startRedis(o: StartRedisOptions = {}): Promise<TestRedis> {
  installExitHook();
  const dir = mkdtempSync(join(tmpdir(), 'fnhost-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  for (let attempt = 1; !child; attempt++) {
    port = await freePort();
    try {
      child = await spawnRedis(port, dir, o);
    } catch (err) {
      if (attempt >= START_ATTEMPTS) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }
  let current: ChildProcess | undefined = child;
  const stopCurrent = async (): Promise<void> => {
    const c = current;
    current = undefined;
    if (c) await stopProcess(c);
  };
  return {
    url: `redis://${o.password ? `:${encodeURIComponent(o.password)}@` : ''}127.0.0.1:${port}`,
    port,
    stop: async () => {
      await stopCurrent();
      rmSync(dir, { recursive: true, force: true });
    },
    restart: async () => {
      await stopCurrent();
      current = await spawnRedis(port, dir, o);
    },
    kill: () => {
      current?.kill('SIGKILL');
      if (current) running.delete(current);
      current = undefined;
    },
    pause: () => current?.kill('SIGSTOP'),
    resume: () => current?.kill('SIGCONT'),
  };
}

async function spawnRedis(port: number, dir: string, o: StartRedisOptions): Promise<ChildProcess> {
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'no',
    '--dir',
    dir,
  ];
  if (o.password) args.push('--requirepass', o.password);
  if (o.sentinel) {
    // A Sentinel rewrites its config file, so it gets one of its own in the temp dir.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      `sentinel monitor ${o.sentinel.name} 127.0.0.1 ${o.sentinel.masterPort} 1\nsentinel down-after-milliseconds ${o.sentinel.name} 5000\n`,
    );
    args.unshift(conf, '--sentinel');
  }
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited: string | undefined;
  child.once('exit', (code, signal) => {
    running.delete(child);
    exited = `exited (${signal ?? code})`;
  });
  child.once('error', (err) => {
    exited = `failed to start: ${err.message}`;
  });
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await answersPing(port))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      running.delete(child);
      throw new Error(
        `redis-server on port ${port} ${exited ?? `did not answer PING within ${START_TIMEOUT_MS} ms`}\n${output}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

/** True when something on `port` replies to an inline PING (PONG, or NOAUTH when a password is set). */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(/^(\+PONG|-NOAUTH)/.test(d.toString())));
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
  await exited;
  clearTimeout(timer);
  running.delete(child);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A test that dies on an assertion or a signal must not leave redis-servers behind. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}
