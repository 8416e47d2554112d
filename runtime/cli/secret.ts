/**
 * `fnhost secret put NAME` / `list` / `delete NAME`: an app's secrets in the cluster, which
 * handlers see in `ctx.env` over `[vars]`. As with wrangler, a change takes effect on the
 * version that runs, on every node, without a deploy: the nodes reload it with the new secrets
 * (a hot swap, clients kept) and put and delete wait until they have. A value comes from stdin
 * so it never lands in shell history or `ps`; list shows names, never values.
 */
import { text } from 'node:stream/consumers';
import { shortHash } from '../cluster/state.ts';
import { CLUSTER_HELP, parseClusterArgs, withCluster } from './cluster.ts';
import { type Command, CommandError, commandUsage, printResult, usageError } from './command.ts';
import { summaryOf } from './commands.ts';
import { DEFAULT_TIMEOUT_S, parseTimeout, printConvergence, rollOut } from './converge.ts';

/** Secrets become `ctx.env` names, like shell variables. */
const SECRET_NAME = /^[A-Z_][A-Z0-9_]*$/;

export const secret: Command = {
  ...summaryOf('secret'),
  flags: `  --timeout SECONDS   how long put and delete wait for the nodes (default ${DEFAULT_TIMEOUT_S})`,
  shared: CLUSTER_HELP,
  run: manageSecrets,
};

async function manageSecrets(argv: string[]): Promise<number> {
  const { values, positionals, load } = parseClusterArgs(argv, { timeout: { type: 'string' } });
  const [action, name, ...extra] = positionals;
  if (action === undefined) {
    process.stdout.write(commandUsage(secret));
    return 0;
  }
  if (action !== 'put' && action !== 'list' && action !== 'delete')
    throw usageError(`unknown action "${action}" (known: put, list, delete)`);
  if (action === 'list' && name !== undefined) throw usageError(`list takes no NAME, got ${name}`);
  if (action !== 'list') {
    if (name === undefined || extra.length > 0) throw usageError(`${action} takes one NAME`);
    if (!SECRET_NAME.test(name)) {
      throw usageError(
        `secret name must be upper-case letters, digits and "_", not starting with a digit, got "${name}"`,
      );
    }
  }
  const timeoutMs = parseTimeout(values.timeout);
  const config = load();
  const app = config.name;
  const value = action === 'put' ? await readValue(name) : '';
  return withCluster(config, `secret ${action}`, async (state) => {
    if (action === 'list') {
      const names = Object.keys((await state.secrets(app)).values).sort();
      printResult(values.json, names.join('\n') || `no secrets for app ${app}`, { app, secrets: names });
      return 0;
    }
    const revision =
      action === 'put' ? await state.putSecret(app, name, value) : await state.deleteSecret(app, name);
    if (revision === undefined)
      throw new CommandError(`no secret ${name} for app ${app} (see fnhost secret list)`);
    const done = `secret ${name} ${action === 'put' ? 'set' : 'deleted'} for app ${app}`;
    const active = await state.active(app);
    if (!active) {
      const record = { app, secret: name, revision, active: null };
      printResult(values.json, `${done}; no version is deployed yet: the first deploy gets it`, record);
      return 0;
    }
    const result = await rollOut(state, app, { hash: active, secretsRevision: revision }, timeoutMs);
    return printConvergence(
      `${done}, applied to its running version ${shortHash(active)} without a deploy`,
      result,
      values.json ? { app, secret: name, revision, active } : undefined,
      'live',
    );
  });
}

/** The value from stdin, without the newline `echo` or a terminal adds. */
async function readValue(name: string): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write(`value of ${name} (end with Enter, then Ctrl-D):\n`);
  const value = (await text(process.stdin)).replace(/\r?\n$/, '');
  if (value === '') throw new CommandError(`no value for ${name} on stdin; nothing was set`);
  return value;
}
