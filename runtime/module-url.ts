/**
 * The URL of another of fnhost's own files that is loaded by path rather than imported (a worker,
 * a script esbuild bundles), named by its source path relative to `base` (`./crypto-worker.ts`).
 * Run from the sources, in a checkout, that is the .ts file; run from the compiled package
 * (`npm pack`: tsc rewrites import specifiers, never these paths) it is the .js file tsc wrote.
 */
export function moduleUrl(sourcePath: string, base: string): URL {
  return new URL(base.endsWith('.js') ? sourcePath.replace(/\.ts$/, '.js') : sourcePath, base);
}

/**
 * A file of fnhost's package, relative to its package.json (found by a self-reference, which
 * the package's `exports` allow: the same from the sources and from the compiled package).
 */
export function packageFile(relativePath: string): URL {
  return new URL(relativePath, import.meta.resolve('fnhost/package.json'));
}
