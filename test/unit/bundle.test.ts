import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { before, describe, type TestContext, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { BuildError, bundleApp } from '../../runtime/sandbox/bundle.ts';

const appsDir = fileURLToPath(new URL('../fixtures/apps/', import.meta.url));
const fixture = (name: string) => path.join(appsDir, name);
const sdkExists = existsSync(new URL('../../sdk/app.ts', import.meta.url));

type Handler = (...args: unknown[]) => unknown;
interface LoadedApp {
  [event: string]: Handler | Record<string, Handler>;
}

/** Runs the bundle where nothing but the JS built-ins exist, as in a fresh isolate. */
function runInBareContext(code: string): { app: LoadedApp; globals: string[] } {
  const context = vm.createContext({});
  vm.runInContext(code, context);
  return { app: context.__fnhostApp, globals: Object.keys(context) };
}

/** Writes an app folder in a temp dir, removed after the test. */
function scratchApp(t: TestContext, files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fnhost-bundle-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

async function buildError(dir: string): Promise<BuildError> {
  const err = await bundleApp(dir).then(
    () => assert.fail(`expected ${dir} not to build`),
    (e: unknown) => e,
  );
  assert.ok(err instanceof BuildError, `expected a BuildError, got ${err}`);
  return err;
}

describe('bundleApp: app forms', () => {
  test('index form: the default export of index.ts becomes globalThis.__fnhostApp and nothing else leaks', async () => {
    const bundle = await bundleApp(fixture('index-app'));
    assert.equal(bundle.form, 'index');
    assert.deepEqual(bundle.files, ['greeting.ts', 'index.ts']);
    const { app, globals } = runInBareContext(bundle.code);
    assert.deepEqual(globals, ['__fnhostApp']);
    assert.deepEqual(Object.keys(app), ['onStart', 'onConnection', 'rpc']);
    assert.equal((app.onStart as Handler)(), 'started');
    assert.equal(JSON.stringify((app.onConnection as Handler)({ id: 'p1' })), '{"greeting":"hello p1"}');
    assert.equal((app.rpc as Record<string, Handler>).echo({}, ['a', 'b']), 'a b');
  });

  test('files form: on*.ts events, rpc/<name>.ts and server/<name>.ts are assembled into one app', async () => {
    const bundle = await bundleApp(fixture('files-app'));
    assert.equal(bundle.form, 'files');
    assert.deepEqual(bundle.files, [
      'limits.json',
      'onConnection.ts',
      'rpc/add.ts',
      'server/ping.ts',
      'welcome.ts',
    ]);
    const { app } = runInBareContext(bundle.code);
    assert.deepEqual(Object.keys(app), ['onConnection', 'rpc', 'server']);
    assert.deepEqual(Object.keys(app.rpc), ['add']);
    assert.deepEqual(Object.keys(app.server), ['ping']);
    const connected = await (app.onConnection as Handler)({ id: 'p2' });
    assert.equal(JSON.stringify(connected), '{"message":"welcome p2","maxClients":400}');
    assert.equal((app.rpc as Record<string, Handler>).add({}, [2, 3]), 5);
    assert.equal((app.server as Record<string, Handler>).ping('node-b'), 'pong to node-b');
  });

  test('keeps function names that bundling had to rename', async (t) => {
    const dir = scratchApp(t, {
      'onConnection.ts': 'export default function handle() {}\n',
      'onDisconnection.ts': 'export default function handle() {}\n',
    });
    const { code } = await bundleApp(dir);
    assert.match(code, /function handle2\(/, 'esbuild no longer renames the second handle');
    const { app } = runInBareContext(code);
    assert.equal((app.onConnection as Handler).name, 'handle');
    assert.equal((app.onDisconnection as Handler).name, 'handle');
  });

  test('fnhost/sdk resolves to sdk/app.ts: reject and redirect work inside the bundle', async (t) => {
    if (!sdkExists) return t.skip('sdk/app.ts does not exist yet');
    const bundle = await bundleApp(fixture('sdk-app'));
    assert.deepEqual(bundle.files, ['index.ts']);
    const onConnection = runInBareContext(bundle.code).app.onConnection as Handler;
    assert.equal(JSON.stringify(onConnection({ id: 'p3' }, ['secret'])), '{"welcome":true}');
    assert.throws(() => onConnection({ id: 'p3' }, ['wrong']), { message: 'bad token for p3' });
    assert.throws(
      () => onConnection({ id: 'p3' }, ['elsewhere']),
      (e: { addresses: string[] }) => {
        assert.equal(JSON.stringify(e.addresses), '["10.0.0.2:1935"]');
        return true;
      },
    );
  });

  test('a folder with neither index.ts nor on*.ts files is "no functions"', async (t) => {
    const dir = scratchApp(t, { 'README.md': 'nothing here' });
    const err = await buildError(dir);
    assert.equal(err.message, `no functions: expected index.ts or on*.ts files in ${dir}`);
  });

  test('an rpc file whose name is not an identifier is refused', async (t) => {
    const dir = scratchApp(t, {
      'onConnection.ts': 'export default () => {};\n',
      'rpc/add-one.ts': 'export default () => 1;\n',
    });
    const err = await buildError(dir);
    assert.deepEqual(err.problems, [
      {
        file: 'rpc/add-one.ts',
        line: 0,
        column: 0,
        text: 'rpc handler names must be JavaScript identifiers',
      },
    ]);
  });

  test('a handler file without a default export names that file', async (t) => {
    const dir = scratchApp(t, {
      'onConnection.ts': 'export default () => {};\n',
      'rpc/add.ts': 'export const add = 1;\n',
    });
    const err = await buildError(dir);
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0].file, 'rpc/add.ts');
    assert.match(
      err.problems[0].text,
      /No matching export .* "default" \(fnhost uses the default export as rpc\.add\)/,
    );
  });
});

describe('bundleApp: build errors', () => {
  test('a syntax error is a BuildError at its file, line and column', async (t) => {
    const dir = scratchApp(t, {
      'onConnection.ts': 'export default function onConnection() {\n  return 1 +;\n}\n',
    });
    const err = await buildError(dir);
    assert.deepEqual(err.problems, [
      { file: 'onConnection.ts', line: 2, column: 13, text: 'Unexpected ";"' },
    ]);
    assert.equal(err.message, `${path.join(dir, 'onConnection.ts')}:2:13: error: Unexpected ";"`);
  });

  test('a missing module is a BuildError at the import', async (t) => {
    const dir = scratchApp(t, { 'index.ts': "\nimport x from './nope.ts';\nexport default { x };\n" });
    const err = await buildError(dir);
    assert.equal(err.problems.length, 1);
    assert.equal(err.problems[0].file, 'index.ts');
    assert.equal(err.problems[0].line, 2);
    assert.match(err.problems[0].text, /Could not resolve "\.\/nope\.ts"/);
  });

  describe('Node built-ins are refused with the importing file, line and module', () => {
    let failure: BuildError;
    before(async () => {
      failure = await buildError(fixture('node-builtins'));
    });
    const problemIn = (file: string) => {
      const problem = failure.problems.find((p) => p.file === file);
      assert.ok(problem, `no problem reported in ${file}`);
      return problem;
    };

    test('import fs from "fs"', async () => {
      assert.deepEqual(problemIn('onConnection.ts'), {
        file: 'onConnection.ts',
        line: 1,
        column: 16,
        text: 'Node built-in module "fs" is not available to handlers',
      });
      assert.ok(
        failure.message
          .split('\n')
          .includes(
            `${fixture('node-builtins/onConnection.ts')}:1:16: error: Node built-in module "fs" is not available to handlers`,
          ),
      );
    });

    test('import "node:child_process"', async () => {
      const problem = problemIn('onHandshake.ts');
      assert.equal(problem.line, 2);
      assert.equal(problem.text, 'Node built-in module "node:child_process" is not available to handlers');
    });

    test('await import("os")', async () => {
      const problem = problemIn('rpc/hostname.ts');
      assert.equal(problem.line, 3);
      assert.equal(problem.text, 'Node built-in module "os" is not available to handlers');
    });
  });
});

describe('bundleApp: output', () => {
  test('the source map leads from a line of the bundle back to the .ts file and line', async () => {
    const bundle = await bundleApp(fixture('files-app'));
    const index = bundle.code.indexOf('"MARKER_ADD"');
    assert.ok(index >= 0, 'marker not found in the bundle');
    const lines = bundle.code.slice(0, index).split('\n');
    const map = JSON.parse(bundle.map);
    const entry = new SourceMap(map).findEntry(lines.length - 1, lines.at(-1)!.length);
    assert.ok('originalSource' in entry, 'no mapping at the marker');
    assert.equal(entry.originalSource.endsWith('rpc/add.ts'), true, entry.originalSource);
    assert.equal(entry.originalLine, 2);
    const addSource = map.sourcesContent[map.sources.indexOf('rpc/add.ts')];
    assert.match(addSource, /const label = 'MARKER_ADD';/);
  });

  test('the hash depends only on the content: same in another folder, different after an edit', async (t) => {
    const original = await bundleApp(fixture('files-app'));
    assert.match(original.hash, /^[0-9a-f]{64}$/);
    assert.equal((await bundleApp(fixture('files-app'))).hash, original.hash);
    const dir = scratchApp(t, {});
    cpSync(fixture('files-app'), dir, { recursive: true });
    assert.equal((await bundleApp(dir)).hash, original.hash);
    writeFileSync(path.join(dir, 'server/ping.ts'), 'export default () => "pong!";\n');
    assert.notEqual((await bundleApp(dir)).hash, original.hash);
  });

  test('an app that imports fnhost/sdk bundles to the same hash wherever its folder is', async (t) => {
    if (!sdkExists) return t.skip('sdk/app.ts does not exist yet');
    const dir = scratchApp(t, {});
    cpSync(fixture('sdk-app'), dir, { recursive: true });
    assert.equal((await bundleApp(dir)).hash, (await bundleApp(fixture('sdk-app'))).hash);
  });
});
