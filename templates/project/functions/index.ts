import { type Client, defineApp, reject } from 'fnhost/sdk';

/** What this app keeps per client in `client.data`. */
function nameOf(client: Client): string {
  return String(client.data.name);
}

/**
 * Your app: one handler per lifecycle event, run in a sandbox on every node.
 * `fnhost dev` reloads it on every save; `fnhost deploy functions/` ships it to a cluster.
 */
export default defineApp({
  // NetConnection.connect(url, name): a name is required.
  onConnection(client, [name], ctx) {
    if (typeof name !== 'string' || name === '') throw reject('a name is required');
    client.data.name = name;
    ctx.log.info('connected', { name });
    // These fields join the connect `_result` info object the client receives.
    return { greeting: `${ctx.env.GREETING ?? 'hello'}, ${name}`, node: ctx.node.id };
  },

  onDisconnection(client, ctx) {
    ctx.log.info('disconnected', { name: nameOf(client) });
  },

  rpc: {
    // NetConnection.call('hello', …): answers with the caller's name.
    hello(client, [text]) {
      return `${nameOf(client)} said ${String(text)}`;
    },
    // A counter every client of the app shares (ctx.kv: in memory with `fnhost dev`, Redis in a cluster).
    async count(_client, _args, ctx) {
      return ctx.kv.incr('count');
    },
  },
});
