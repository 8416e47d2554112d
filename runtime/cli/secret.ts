/**
 * `fnhost secret put NAME`: store a secret for an app in the cluster. The value comes from
 * stdin so it never lands in shell history or `ps`. Nodes read secrets when they load a
 * version, so it reaches handlers (`ctx.env.NAME`) with the next deploy.
 */
import { text } from 'node:stream/consumers';
import { CommandError, openCluster, parseClusterArgs, usageError } from './cluster.ts';

/** Secrets become `ctx.env` names, like shell variables. */
const SECRET_NAME = /^[A-Z_][A-Z0-9_]*$/;

export async function secret(argv: string[]): Promise<number> {
  const { positionals, load } = parseClusterArgs(argv, {});
  const [action, name, ...extra] = positionals;
  if (action !== 'put') throw usageError(`secret: unknown action "${action ?? ''}" (known: put)`);
  if (name === undefined || extra.length > 0) throw usageError('usage: fnhost secret put NAME < value');
  if (!SECRET_NAME.test(name)) {
    throw usageError(
      `secret name must be upper-case letters, digits and "_", not starting with a digit, got "${name}"`,
    );
  }
  const config = load();
  const app = config.name;
  if (process.stdin.isTTY) process.stderr.write(`value of ${name} (end with Enter, then Ctrl-D):\n`);
  const value = (await text(process.stdin)).replace(/\r?\n$/, '');
  if (value === '') throw new CommandError(`no value for ${name} on stdin; nothing was set`);
  const state = await openCluster(config, 'secret put');
  try {
    await state.putSecret(app, name, value);
  } finally {
    await state.close();
  }
  process.stdout.write(`secret ${name} set for app ${app} (nodes pick it up on the next deploy)\n`);
  return 0;
}
