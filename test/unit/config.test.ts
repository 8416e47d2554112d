import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import {
  ConfigError,
  type ConfigOverrides,
  type FnhostConfig,
  loadConfig,
  parseConfig,
  parseHostPort,
  redactUrl,
} from '../../runtime/config/config.ts';

const FIXTURES = resolve(import.meta.dirname, '../fixtures/config');
const FULL = join(FIXTURES, 'full');
const DIR = '/srv/app';

function config(text: string, env: NodeJS.ProcessEnv = {}, overrides: ConfigOverrides = {}): FnhostConfig {
  return parseConfig(text, { dir: DIR, file: 'wrangler-like.toml', env, overrides });
}

/** Asserts the config fails with exactly this message and blames `key`. */
function rejects(make: () => unknown, key: string, message: string | RegExp): void {
  assert.throws(make, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.key, key);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

describe('config loading', () => {
  test('with no file and no environment, every setting has its default', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fnhost-defaults-'));
    try {
      assert.deepEqual(loadConfig({ dir, env: {} }), {
        name: basename(dir),
        main: 'functions/',
        mainPath: join(dir, 'functions'),
        node: {
          rtmfp: [{ host: '0.0.0.0', port: 1935 }],
          http: undefined,
          publicAddress: undefined,
          shutdownMs: 5000,
          nativePackets: true,
        },
        cluster: { redis: undefined, name: 'default', heartbeatMs: 1000, secret: undefined },
        limits: { cpuMs: 50, memoryMb: 128, awaitMs: 5000, handshakes: 1000, groupsPerClient: 64 },
        balance: { strategy: 'none', maxClients: undefined },
        vars: {},
        file: undefined,
        warnings: [],
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('reads every setting from wrangler-like.toml in the project folder', () => {
    assert.deepEqual(loadConfig({ dir: FULL, env: {} }), {
      name: 'chat',
      main: 'fns/',
      mainPath: join(FULL, 'fns'),
      node: {
        rtmfp: [
          { host: '0.0.0.0', port: 1935 },
          { host: '::', port: 1936 },
        ],
        http: { host: '127.0.0.1', port: 8080 },
        publicAddress: 'rtmfp.example.com:1935',
        shutdownMs: 2500,
        nativePackets: false,
      },
      cluster: {
        redis: 'redis://127.0.0.1:6379',
        name: 'eu-west',
        heartbeatMs: 500,
        secret: 'correct-horse-battery-staple',
      },
      limits: { cpuMs: 20, memoryMb: 64, awaitMs: 2000, handshakes: 16, groupsPerClient: 8 },
      balance: { strategy: 'least-loaded', maxClients: 500 },
      vars: { GREETING: 'hello', EMPTY: '' },
      file: join(FULL, 'wrangler-like.toml'),
      warnings: [],
    });
  });

  test('an explicit file is read instead of the project folder one', () => {
    const c = loadConfig({ dir: FIXTURES, file: 'full/wrangler-like.toml', env: {} });
    assert.equal(c.name, 'chat');
    assert.equal(c.file, join(FULL, 'wrangler-like.toml'));
  });

  test('a missing explicit file is an error naming it', () => {
    const file = join(FIXTURES, 'nope.toml');
    rejects(
      () => loadConfig({ dir: FIXTURES, file: 'nope.toml', env: {} }),
      '',
      `config: cannot read ${file}: not found`,
    );
  });

  test('main is resolved relative to the config file, not the project folder', () => {
    const c = parseConfig('main = "../fns"', { dir: DIR, file: 'conf/app.toml', env: {} });
    assert.equal(c.main, '../fns');
    assert.equal(c.mainPath, '/srv/app/fns');
    assert.equal(
      parseConfig('', { dir: DIR, file: 'conf/app.toml', env: {} }).mainPath,
      '/srv/app/conf/functions',
    );
  });

  test('main from the environment or a flag is resolved relative to the project folder', () => {
    const opts = { dir: DIR, file: 'conf/app.toml' };
    assert.equal(parseConfig('', { ...opts, env: { FNHOST_MAIN: 'src' } }).mainPath, '/srv/app/src');
    assert.equal(parseConfig('', { ...opts, env: {}, overrides: { main: '/abs/fns' } }).mainPath, '/abs/fns');
  });
});

describe('node addresses', () => {
  test('rtmfp accepts one address as a string', () => {
    assert.deepEqual(config('[node]\nrtmfp = "10.0.0.1:1935"').node.rtmfp, [
      { host: '10.0.0.1', port: 1935 },
    ]);
  });

  test('rtmfp accepts an array of addresses', () => {
    assert.deepEqual(config('[node]\nrtmfp = ["10.0.0.1:1935", "localhost:0"]').node.rtmfp, [
      { host: '10.0.0.1', port: 1935 },
      { host: 'localhost', port: 0 },
    ]);
  });

  test('an IPv6 listen address is written in brackets and stored without them', () => {
    assert.deepEqual(parseHostPort('[2001:db8::1]:65535', 'x'), { host: '2001:db8::1', port: 65535 });
    assert.deepEqual(config('[node]\nhttp = "[::1]:8080"').node.http, { host: '::1', port: 8080 });
  });

  test('an HTTP port given alone listens on 127.0.0.1 only, from the file, the environment or a flag', () => {
    const local = { host: '127.0.0.1', port: 8080 };
    assert.deepEqual(config('[node]\nhttp = 8080').node.http, local);
    assert.deepEqual(config('[node]\nhttp = "8080"').node.http, local);
    assert.deepEqual(config('', { FNHOST_HTTP: '8080' }).node.http, local);
    assert.deepEqual(config('', {}, { http: '8080' }).node.http, local);
    assert.deepEqual(config('[node]\nhttp = "0.0.0.0:8080"').node.http, { host: '0.0.0.0', port: 8080 });
    rejects(
      () => config('[node]\nhttp = 70000'),
      '[node] http',
      'config: [node] http must be HOST:PORT, [IPv6]:PORT or a port alone, from 0 to 65535, got 70000',
    );
  });

  test('a bad host:port names the key and the value', () => {
    const expected = 'HOST:PORT or [IPv6]:PORT with a port from 0 to 65535';
    rejects(
      () => config('[node]\nhttp = "0.0.0.0:70000"'),
      '[node] http',
      `config: [node] http must be ${expected}, got "0.0.0.0:70000"`,
    );
    for (const bad of [
      'h:65536',
      '0.0.0.0',
      '::1:1935',
      '[::1]',
      '[nothost]:1935',
      'a b:1',
      ':1935',
      'h:-1',
    ]) {
      rejects(
        () => parseHostPort(bad, '--rtmfp'),
        '--rtmfp',
        `config: --rtmfp must be ${expected}, got "${bad}"`,
      );
    }
    rejects(() => config('[node]\nrtmfp = []'), '[node] rtmfp', /must be HOST:PORT or a non-empty array/);
    rejects(
      () => config('[node]\npublic_address = "example.com"'),
      '[node] public_address',
      /got "example.com"/,
    );
  });
});

describe('config errors', () => {
  test('an unknown section lists the known ones', () => {
    rejects(
      () => config('[limit]\ncpu_ms = 5'),
      '[limit]',
      'config: unknown section [limit] (known: node, cluster, limits, balance, vars)',
    );
  });

  test('an unknown key lists the known keys of its section', () => {
    rejects(
      () => config('[node]\nrtmpf = "0.0.0.0:1935"'),
      '[node] rtmpf',
      'config: unknown key [node] rtmpf (known: rtmfp, http, public_address, shutdown_ms, native_packets)',
    );
    rejects(
      () => config('mian = "functions/"'),
      'mian',
      /^config: unknown key mian \(known: name, main, node,/,
    );
  });

  test('a value of the wrong type names the key, what was expected and what was given', () => {
    rejects(
      () => config('[limits]\ncpu_ms = "fast"'),
      '[limits] cpu_ms',
      'config: [limits] cpu_ms must be a positive integer, got "fast"',
    );
    rejects(() => config('node = "x"'), '[node]', 'config: [node] must be a table, got "x"');
    rejects(
      () => config('[vars]\nPORT = 8080'),
      '[vars] PORT',
      'config: [vars] PORT must be a string, got 8080',
    );
    rejects(() => config('main = ["a"]'), 'main', 'config: main must be a non-empty string, got an array');
  });

  test('limits must be positive integers, memory at least 8 MB', () => {
    rejects(
      () => config('[limits]\ncpu_ms = 0'),
      '[limits] cpu_ms',
      'config: [limits] cpu_ms must be a positive integer, got 0',
    );
    rejects(
      () => config('[limits]\nawait_ms = 1.5'),
      '[limits] await_ms',
      /must be a positive integer, got 1.5$/,
    );
    rejects(() => config('[limits]\nhandshakes = -1'), '[limits] handshakes', /got -1$/);
    rejects(() => config('[limits]\ngroups_per_client = 0'), '[limits] groups_per_client', /got 0$/);
    rejects(
      () => config('[limits]\nmemory_mb = 4'),
      '[limits] memory_mb',
      'config: [limits] memory_mb must be an integer of at least 8, got 4',
    );
    assert.equal(config('[limits]\nmemory_mb = 8').limits.memoryMb, 8);
  });

  test('[balance] strategy must be one of the strategies, max_clients a positive integer', () => {
    rejects(
      () => config('[balance]\nstrategy = "random"'),
      '[balance] strategy',
      'config: [balance] strategy must be one of "round-robin", "least-loaded", "all-servers", "none", got "random"',
    );
    rejects(
      () => config('[balance]\nmax_clients = 0'),
      '[balance] max_clients',
      'config: [balance] max_clients must be a positive integer, got 0',
    );
    rejects(
      () => config('[balance]\nmax_client = 10'),
      '[balance] max_client',
      'config: unknown key [balance] max_client (known: strategy, max_clients)',
    );
    assert.deepEqual(config('[balance]\nstrategy = "round-robin"\nmax_clients = 100').balance, {
      strategy: 'round-robin',
      maxClients: 100,
    });
  });

  test('[node] native_packets is true or false, from the file or FNHOST_NATIVE_PACKETS', () => {
    assert.equal(config('[node]\nnative_packets = false').node.nativePackets, false);
    assert.equal(
      config('[node]\nnative_packets = false', { FNHOST_NATIVE_PACKETS: 'true' }).node.nativePackets,
      true,
    );
    rejects(
      () => config('[node]\nnative_packets = "no"'),
      '[node] native_packets',
      'config: [node] native_packets must be true or false, got "no"',
    );
    rejects(
      () => config('', { FNHOST_NATIVE_PACKETS: '0' }),
      'FNHOST_NATIVE_PACKETS',
      'config: FNHOST_NATIVE_PACKETS must be true or false, got "0"',
    );
  });

  test('name must be a valid app name', () => {
    rejects(
      () => config('name = "my app"'),
      'name',
      /^config: name must be a name of 1-64 letters, .*, got "my app"$/,
    );
    rejects(() => config(`name = "${'a'.repeat(65)}"`), 'name', /^config: name must be/);
    rejects(() => config('[cluster]\nname = "-x"'), '[cluster] name', /^config: \[cluster\] name must be/);
    assert.equal(config(`name = "A_b-${'c'.repeat(60)}"`).name.length, 64);
  });

  test('a project folder that is not a valid app name needs an explicit name', () => {
    rejects(
      () => parseConfig('', { dir: '/srv/my app', env: {} }),
      'name',
      /defaults to the project folder's name "my app"/,
    );
    assert.equal(parseConfig('name = "ok"', { dir: '/srv/my app', env: {} }).name, 'ok');
  });

  test('redis must be a redis URL, and its password is not echoed', () => {
    for (const url of ['redis://r1:6379', 'rediss://r1:6380/2', 'redis+sentinel://s1:26379/mymaster']) {
      assert.equal(config(`[cluster]\nredis = "${url}"`).cluster.redis, url);
    }
    rejects(
      () => config('[cluster]\nredis = "http://user:secret@r1:6379"'),
      '[cluster] redis',
      'config: [cluster] redis must be a URL starting with redis://, rediss://, redis+sentinel://, got "http://user:***@r1:6379"',
    );
  });

  test('URLs in logs and errors keep the user name and hide the password, whatever the scheme', () => {
    assert.equal(redactUrl('redis://u:p@r1:1/0'), 'redis://u:***@r1:1/0');
    assert.equal(redactUrl('redis+sentinel://:p@s1,s2/m'), 'redis+sentinel://:***@s1,s2/m');
    assert.equal(redactUrl('rediss://u:p@ss@r1'), 'rediss://u:***@r1', 'an unencoded @ in the password');
    assert.equal(redactUrl('redis://topsecret@r1'), 'redis://***@r1', 'a password without its colon');
    assert.equal(redactUrl('u:p@r1:6379'), 'u:***@r1:6379', 'no scheme');
    assert.equal(redactUrl('redis://r1:6379/0'), 'redis://r1:6379/0');
  });

  test('a TOML syntax error names the file, line and column, and shows the line', () => {
    const file = join(FIXTURES, 'syntax-error.toml');
    assert.throws(
      () => loadConfig({ dir: FIXTURES, file: 'syntax-error.toml', env: {} }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const [first, , ...codeblock] = err.message.split('\n');
        assert.equal(first, `config: ${file}:4:10: invalid value`);
        assert.match(codeblock.join('\n'), /^4: +cpu_ms = = 50$/m);
        return true;
      },
    );
  });
});

describe('precedence', () => {
  const file = '[cluster]\nredis = "redis://file:6379"\nheartbeat_ms = 100\n[limits]\ncpu_ms = 10';

  test('environment variables override the file', () => {
    const c = config(file, {
      FNHOST_REDIS: 'redis://env:6379',
      FNHOST_CPU_MS: '30',
      FNHOST_RTMFP: '127.0.0.1:1935, [::1]:1935',
      FNHOST_PUBLIC_ADDRESS: 'edge.example.com:1935',
    });
    assert.equal(c.cluster.redis, 'redis://env:6379');
    assert.equal(c.limits.cpuMs, 30);
    assert.equal(c.cluster.heartbeatMs, 100);
    assert.equal(c.node.publicAddress, 'edge.example.com:1935');
    assert.deepEqual(c.node.rtmfp, [
      { host: '127.0.0.1', port: 1935 },
      { host: '::1', port: 1935 },
    ]);
  });

  test('an empty environment variable counts as unset', () => {
    assert.equal(config(file, { FNHOST_REDIS: '' }).cluster.redis, 'redis://file:6379');
  });

  test('flags override the environment', () => {
    const env = { FNHOST_REDIS: 'redis://env:6379', FNHOST_CPU_MS: '30', FNHOST_NAME: 'envname' };
    const c = config(file, env, { redis: 'rediss://flag:6380', cpuMs: 40, rtmfp: ['0.0.0.0:2000'] });
    assert.equal(c.cluster.redis, 'rediss://flag:6380');
    assert.equal(c.limits.cpuMs, 40);
    assert.equal(c.name, 'envname');
    assert.deepEqual(c.node.rtmfp, [{ host: '0.0.0.0', port: 2000 }]);
  });

  test('a bad environment variable or flag is named in the error', () => {
    rejects(
      () => config('', { FNHOST_CPU_MS: 'x' }),
      'FNHOST_CPU_MS',
      'config: FNHOST_CPU_MS must be a positive integer, got "x"',
    );
    rejects(
      () => config('', { FNHOST_HTTP: 'localhost' }),
      'FNHOST_HTTP',
      /^config: FNHOST_HTTP must be HOST:PORT/,
    );
    rejects(
      () => config('', {}, { memoryMb: 1 }),
      '--memory-mb',
      'config: --memory-mb must be an integer of at least 8, got 1',
    );
  });

  test('an FNHOST_* variable that is no setting is named in a warning, with the known ones', () => {
    const c = config('', { FNHOST_REDSI: 'redis://r1:6379', FNHOST_LOG_LEVEL: 'debug', FNHOST_VAR_X: '1' });
    assert.equal(c.cluster.redis, undefined);
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0], /^config: unknown variable FNHOST_REDSI, ignored \(known: FNHOST_NAME, /);
    assert.match(c.warnings[0], /FNHOST_REDIS, .*FNHOST_LOG_LEVEL, FNHOST_VAR_<NAME>\)$/);
    assert.deepEqual(
      config('', { FNHOST_REDIS: 'redis://r1:6379', FNHOST_BENCH_TCSERVER: 'x' }).warnings,
      [],
    );
  });

  test('FNHOST_VAR_<NAME> adds to vars, over the file', () => {
    const c = config('[vars]\nGREETING = "hello"\nKEEP = "k"', {
      FNHOST_VAR_GREETING: 'hi',
      FNHOST_VAR_TOKEN: 't',
    });
    assert.deepEqual(c.vars, { GREETING: 'hi', KEEP: 'k', TOKEN: 't' });
    rejects(
      () => config('', { FNHOST_VAR_: 'x' }),
      'FNHOST_VAR_',
      'config: FNHOST_VAR_ has no name: use FNHOST_VAR_<NAME>',
    );
  });
});

test('a cluster secret shorter than 16 characters is refused without echoing it', () => {
  assert.throws(
    () => parseConfig('[cluster]\nsecret = "short"', { dir: '/tmp', env: {} }),
    (e: unknown) => e instanceof ConfigError && e.key === '[cluster] secret' && !e.message.includes('short'),
  );
});
