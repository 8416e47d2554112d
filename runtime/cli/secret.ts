/**
 * `fnhost secret put NAME`: store a secret for an app in the cluster. The value comes from
 * stdin so it never lands in shell history or `ps`. Nodes read secrets when they load a
 * version, so it reaches handlers (`ctx.env.NAME`) with the next deploy.
 */
import { text } from 'node:stream/consumers';
import { CLUSTER_HELP, openCluster, parseClusterArgs } from './cluster.ts';
import { type Command, CommandError, commandUsage, printResult, usageError } from './command.ts';

/** Secrets become `ctx.env` names, like shell variables. */
const SECRET_NAME = /^[A-Z_][A-Z0-9_]*$/;

export const secret: Command = {
  name: 'secret',
  synopsis: ['secret put NAME [cluster options] < value'],
  about: 'Stores a secret (read from stdin) for the app; nodes pick it up on the next deploy.',
  shared: CLUSTER_HELP,
  run: manageSecrets,
};

async function manageSecrets(argv: string[]): Promise<number> {
  const { values, positionals, load } = parseClusterArgs(argv, {});
  const [action, name, ...extra] = positionals;
  if (action === undefined) {
    process.stdout.write(commandUsage(secret));
    return 0;
  }
  if (action !== 'put') throw usageError(`unknown action "${action}" (known: put)`);
  if (name === undefined || extra.length > 0) throw usageError('put takes one NAME');
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
  printResult(values.json, `secret ${name} set for app ${app} (nodes pick it up on the next deploy)`, {
    app,
    secret: name,
  });
  return 0;
}
