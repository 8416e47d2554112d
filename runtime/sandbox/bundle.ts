/**
 * Turns an app folder into one script for an isolate: esbuild bundles the app (either form of
 * DESIGN.md "Handler API") into an IIFE that sets `globalThis.__fnhostApp`, with no Node
 * built-ins, and an external source map.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Message, type Plugin } from 'esbuild';
import { moduleUrl } from '../module-url.ts';

/** One isolate-ready script built from an app folder. */
export interface Bundle {
  /** IIFE script (ES2023) that sets `globalThis.__fnhostApp` to the app object when run. */
  code: string;
  /** Source map JSON; sources are relative to the app folder and carry their content. */
  map: string;
  /** sha256 hex of `code`: the version's identity in the cluster store. */
  hash: string;
  /** `index`: `index.ts` default-exports the app; `files`: one file per handler. */
  form: 'index' | 'files';
  /** The app's input files relative to the app folder, sorted (the fnhost SDK not included). */
  files: string[];
}

/** Where the build failed: `file` relative to the app folder, 1-based `line` and `column`, 0 if unknown. */
export interface BuildProblem {
  file: string;
  line: number;
  column: number;
  text: string;
}

/** The app folder does not build; the message has one `file:line:column: error: text` line per problem. */
export class BuildError extends Error {
  readonly problems: BuildProblem[];

  constructor(problems: BuildProblem[], dir: string) {
    super(problems.map((p) => formatProblem(p, dir)).join('\n'));
    this.name = 'BuildError';
    this.problems = problems;
  }
}

/** The global the sandbox reads the app object from after running the script. */
export const APP_GLOBAL = '__fnhostApp';

const SDK_PATH = fileURLToPath(moduleUrl('../../sdk/app.ts', import.meta.url));
/** The SDK is loaded under this name, not its path, so the bundle (and hash) is the same wherever the app lives. */
const SDK_NAMESPACE = 'fnhost';
const SDK_MODULE = 'sdk/app.ts';
/** Name of the generated entry module in error locations and the source map. */
const ENTRY_NAME = 'fnhost:entry';
/** Never written (write: false); esbuild needs an output path to emit an external map. */
const OUT_FILE = '.fnhost-bundle.js';
const EVENT_FILE = /^(on[A-Z][A-Za-z]*)\.ts$/;
const NAMED_FILE = /^([A-Za-z_$][\w$]*)\.ts$/;
const HANDLER_GROUPS = ['rpc', 'server'] as const;

const builtinNames = [...new Set(builtinModules.map((name) => name.replace(/^node:/, '')))];
// Every `node:` specifier is a built-in, including the prefix-only ones (node:test, node:sqlite).
const BUILTIN_FILTER = new RegExp(
  `^(node:.*|${builtinNames.map((n) => n.replace(/[^\w/-]/g, '\\$&')).join('|')})$`,
);

/** A handler module the generated entry imports: `key` is its place in the app object. */
interface HandlerFile {
  file: string;
  group?: (typeof HANDLER_GROUPS)[number];
  key: string;
}

/** Bundles the app in `dir`; rejects with a BuildError that names file, line and column. */
export async function bundleApp(dir: string): Promise<Bundle> {
  const absDir = path.resolve(dir);
  const form = existsSync(path.join(absDir, 'index.ts')) ? 'index' : 'files';
  const handlers = form === 'index' ? [{ file: 'index.ts', key: '' }] : findHandlerFiles(absDir, dir);

  const result = await build({
    stdin: { contents: entrySource(handlers), resolveDir: absDir, sourcefile: ENTRY_NAME, loader: 'js' },
    absWorkingDir: absDir,
    outfile: path.join(absDir, OUT_FILE),
    write: false,
    metafile: true,
    bundle: true,
    format: 'iife',
    platform: 'neutral',
    target: 'es2023',
    mainFields: ['module', 'main'],
    sourcemap: 'external',
    sourcesContent: true,
    minify: false,
    keepNames: true,
    logLevel: 'silent',
    plugins: [sandboxImports],
  }).catch((err: unknown) => {
    throw toBuildError(err, handlers, dir);
  });

  const code = result.outputFiles.find((f) => f.path.endsWith('.js'))!.text;
  const map = result.outputFiles.find((f) => f.path.endsWith('.js.map'))!.text;
  const files = Object.keys(result.metafile.inputs)
    .filter((f) => f !== ENTRY_NAME && f !== `${SDK_NAMESPACE}:${SDK_MODULE}`)
    .sort();
  return { code, map, hash: createHash('sha256').update(code).digest('hex'), form, files };
}

/** The "files" form: top-level `on*.ts` events, `rpc/<name>.ts` and `server/<name>.ts`. */
function findHandlerFiles(absDir: string, dir: string): HandlerFile[] {
  const handlers: HandlerFile[] = [];
  const problems: BuildProblem[] = [];
  for (const name of listFiles(absDir)) {
    const event = EVENT_FILE.exec(name);
    if (event) handlers.push({ file: name, key: event[1] });
  }
  for (const group of HANDLER_GROUPS) {
    for (const name of listFiles(path.join(absDir, group))) {
      if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue;
      const named = NAMED_FILE.exec(name);
      const file = `${group}/${name}`;
      if (named) handlers.push({ file, group, key: named[1] });
      else problems.push(wholeFile(file, `${group} handler names must be JavaScript identifiers`));
    }
  }
  if (problems.length > 0) throw new BuildError(problems, dir);
  if (handlers.length === 0) {
    throw new BuildError([wholeFile('', `no functions: expected index.ts or on*.ts files in ${dir}`)], dir);
  }
  return handlers;
}

function listFiles(absDir: string): string[] {
  if (!existsSync(absDir)) return [];
  return readdirSync(absDir, { withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name)
    .sort();
}

/** Import line i of the entry is handlers[i], so an error on that line maps back to its file. */
function entrySource(handlers: HandlerFile[]): string {
  const imports = handlers.map((h, i) => `import h${i} from ${JSON.stringify(`./${h.file}`)};`);
  if (handlers.length === 1 && handlers[0].key === '') {
    return `${imports[0]}\nglobalThis.${APP_GLOBAL} = h0;\n`;
  }
  const props = (group: HandlerFile['group']) =>
    handlers.flatMap((h, i) => (h.group === group ? [`${JSON.stringify(h.key)}: h${i}`] : []));
  const fields = props(undefined);
  for (const group of HANDLER_GROUPS) {
    const groupProps = props(group);
    if (groupProps.length > 0) fields.push(`${group}: { ${groupProps.join(', ')} }`);
  }
  return `${imports.join('\n')}\nglobalThis.${APP_GLOBAL} = { ${fields.join(', ')} };\n`;
}

/** Resolves `fnhost/sdk` to fnhost's own SDK and refuses Node built-ins (isolates have none). */
const sandboxImports: Plugin = {
  name: 'fnhost-sandbox-imports',
  setup(b) {
    b.onResolve({ filter: /^fnhost\/sdk$/ }, () => ({
      path: SDK_MODULE,
      namespace: SDK_NAMESPACE,
    }));
    b.onLoad({ filter: /.*/, namespace: SDK_NAMESPACE }, async () => ({
      contents: await readFile(SDK_PATH, 'utf8'),
      loader: 'ts',
      resolveDir: path.dirname(SDK_PATH),
    }));
    // esbuild attaches the importing file's location to these errors, dynamic import() included.
    b.onResolve({ filter: BUILTIN_FILTER }, (args) => ({
      errors: [{ text: `Node built-in module "${args.path}" is not available to handlers` }],
    }));
  },
};

/** esbuild rejects with a BuildFailure carrying `errors`; anything else is not the app's fault. */
function toBuildError(err: unknown, handlers: HandlerFile[], dir: string): unknown {
  const errors = (err as { errors?: Message[] }).errors;
  if (!errors) return err;
  return new BuildError(
    errors.map((m) => toProblem(m, handlers)),
    dir,
  );
}

function toProblem(m: Message, handlers: HandlerFile[]): BuildProblem {
  const loc = m.location;
  if (!loc) return wholeFile('', m.text);
  if (loc.file === ENTRY_NAME) {
    // The generated entry only imports defaults, so its errors are about one handler file.
    const handler = handlers[loc.line - 1];
    if (!handler) return wholeFile('', m.text);
    const role =
      handler.key === '' ? 'the app' : handler.group ? `${handler.group}.${handler.key}` : handler.key;
    return wholeFile(handler.file, `${m.text} (fnhost uses the default export as ${role})`);
  }
  return { file: loc.file, line: loc.line, column: loc.column + 1, text: m.text };
}

function wholeFile(file: string, text: string): BuildProblem {
  return { file, line: 0, column: 0, text };
}

function formatProblem(p: BuildProblem, dir: string): string {
  if (!p.file) return p.text;
  const shown = path.join(dir, p.file);
  return p.line > 0 ? `${shown}:${p.line}:${p.column}: error: ${p.text}` : `${shown}: error: ${p.text}`;
}
