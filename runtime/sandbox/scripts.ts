import type { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { moduleUrl } from '../module-url.ts';

/** File names the isolate gives the two scripts, so a stack trace tells the app's frames apart. */
export const SCRIPT_NAME = 'fnhost-app.js';
export const RUNTIME_NAME = 'fnhost-runtime.js';

let runtimeText: string | undefined;
const runtime = compileIsolateRuntime();

/** The isolate-side runtime (isolate/runtime.ts), bundled once per process into a plain script. */
export function isolateRuntime(): Promise<string> {
  return runtime;
}

/** The same script once bundled, for the synchronous rebuild of an isolate that ran out of memory. */
export function loadedIsolateRuntime(): string {
  if (runtimeText === undefined) throw new Error('the isolate runtime is not bundled yet');
  return runtimeText;
}

/** Rewrites bundle positions in a stack trace to the author's .ts files and lines; drops runtime frames. */
export function authorStack(stack: string, map: SourceMap): string {
  const position = new RegExp(`${SCRIPT_NAME.replace('.', '\\.')}:(\\d+):(\\d+)`, 'g');
  return stack
    .split('\n')
    .filter((line) => !line.includes(RUNTIME_NAME))
    .map((line) =>
      line.replace(position, (whole, l: string, c: string) => {
        const entry = map.findEntry(Number(l) - 1, Number(c) - 1);
        if (!entry || !('originalSource' in entry) || !entry.originalSource) return whole;
        return `${entry.originalSource}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
      }),
    )
    .join('\n');
}

async function compileIsolateRuntime(): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(moduleUrl('./isolate/runtime.ts', import.meta.url))],
    bundle: true,
    format: 'iife',
    platform: 'neutral',
    target: 'es2023',
    write: false,
    logLevel: 'silent',
  });
  runtimeText = result.outputFiles[0].text;
  return runtimeText;
}
