/**
 * `fnhost init DIR`: a new project of its own, outside this repository — the config, an example
 * app, a client script, a tsconfig and a package.json that depends on fnhost — from the files
 * in templates/project, which ship in the package.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NAME, NAME_RULE } from '../config/config.ts';
import { packageFile } from '../module-url.ts';
import { type Command, CommandError, parseOptions, printResult, usageError } from './command.ts';
import { summaryOf } from './commands.ts';

/** The template's files; `{{name}}` in them becomes the app's name. */
const TEMPLATE = packageFile('templates/project/');
/** npm never packs a file named .gitignore, so the template's has another name. */
const RENAMED: Record<string, string> = { gitignore: '.gitignore' };
/** The scaffolded package.json's dev tools: fnhost's own versions, so both typecheck alike. */
const DEV_TOOLS = ['typescript', '@types/node'];

export const init: Command = {
  ...summaryOf('init'),
  flags: `  --name NAME     the app's name, in rtmfp://HOST/NAME (default: DIR's name)
  --fnhost SPEC   the fnhost dependency in package.json (default ^VERSION); a path such as
                  ../fnhost-0.1.0.tgz (from npm pack) is written relative to the project
  --json          print the result as one JSON line`,
  run: initProject,
};

/** fnhost's package.json, the fields init reads. */
interface FnhostPackage {
  version: string;
  devDependencies: Record<string, string>;
  allowScripts: Record<string, boolean>;
}

async function initProject(argv: string[]): Promise<undefined> {
  const { values, positionals } = parseOptions(argv, {
    name: { type: 'string' },
    fnhost: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (positionals.length !== 1) throw usageError('init takes the folder to create the project in');
  const dir = positionals[0];
  const absDir = path.resolve(dir);
  const name = values.name ?? path.basename(absDir);
  if (!NAME.test(name)) {
    const from = values.name === undefined ? `the folder's name "${name}"` : `--name "${name}"`;
    throw usageError(`${from} is not an app name (${NAME_RULE}); choose one with --name`);
  }
  refuseToOverwrite(dir, absDir);

  const fnhost = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as FnhostPackage;
  const files = templateFiles(TEMPLATE, '');
  mkdirSync(absDir, { recursive: true });
  for (const file of files) {
    const text = readFileSync(new URL(file, TEMPLATE), 'utf8').replaceAll('{{name}}', name);
    const target = path.join(absDir, RENAMED[file] ?? file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
  const spec = dependencySpec(values.fnhost ?? `^${fnhost.version}`, absDir);
  writeFileSync(
    path.join(absDir, 'package.json'),
    `${JSON.stringify(projectPackage(name, spec, fnhost), null, 2)}\n`,
  );

  const written = [...files.map((f) => RENAMED[f] ?? f), 'package.json'].sort();
  printResult(
    values.json,
    `created ${dir} (app "${name}"): ${written.join(', ')}\nnext: cd ${dir} && npm install && npx fnhost dev`,
    { created: absDir, name, files: written, fnhost: spec },
  );
  return undefined;
}

/** A project is only ever written into a new or empty folder: init never replaces a file. */
function refuseToOverwrite(dir: string, absDir: string): void {
  const stat = statSync(absDir, { throwIfNoEntry: false });
  if (!stat) return;
  if (!stat.isDirectory())
    throw new CommandError(`${dir} is a file: init creates a project in a new or empty folder`);
  const entries = readdirSync(absDir);
  if (entries.length > 0) {
    throw new CommandError(
      `${dir} is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}): init creates a project in a new or empty folder and never overwrites`,
    );
  }
}

/** The template's files, relative to it, in `/` form. */
function templateFiles(root: URL, under: string): string[] {
  return readdirSync(new URL(under, root), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? templateFiles(root, `${under}${entry.name}/`) : [`${under}${entry.name}`],
  );
}

/** An existing path (a tarball from `npm pack`, a checkout) becomes a `file:` spec relative to the project. */
function dependencySpec(spec: string, absDir: string): string {
  if (!existsSync(spec)) return spec;
  const relative = path.relative(absDir, path.resolve(spec)).split(path.sep).join('/');
  return `file:${relative}`;
}

function projectPackage(name: string, fnhostSpec: string, fnhost: FnhostPackage): Record<string, unknown> {
  return {
    name,
    version: '0.1.0',
    private: true,
    type: 'module',
    scripts: {
      dev: 'fnhost dev',
      deploy: 'fnhost deploy functions/',
      client: 'node client.ts',
      typecheck: 'tsc --noEmit',
    },
    dependencies: { fnhost: fnhostSpec },
    devDependencies: Object.fromEntries(DEV_TOOLS.map((tool) => [tool, fnhost.devDependencies[tool]])),
    // What runs install scripts, approved: fnhost (it builds its native packet path) and its own
    // dependencies (Node 24, isolated-vm, esbuild).
    allowScripts: { fnhost: true, ...fnhost.allowScripts },
  };
}
