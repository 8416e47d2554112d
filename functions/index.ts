import { defineApp, reject } from 'fnhost/sdk';

/**
 * The example app `fnhost dev` runs: a chat lobby. Connect with a user name:
 *   const nc = await connect('rtmfp://127.0.0.1:1935/chat', 'alice');
 */
export default defineApp({
  onStart(ctx) {
    ctx.log.info('chat app started', { node: ctx.node.id });
  },

  // Every IHello for this app passes here first. While REDIRECT_TO is set (say, during
  // maintenance), new clients are sent to that node before a session is even opened.
  onHandshake(_hs, ctx) {
    return ctx.env.REDIRECT_TO || undefined;
  },

  // Auth: a user name is required, and the room token when ROOM_TOKEN is set.
  async onConnection(client, [name, token], ctx) {
    if (typeof name !== 'string' || !/^[\w-]{1,32}$/.test(name)) {
      throw reject('a user name is required (1-32 letters, digits, - or _)');
    }
    if (ctx.env.ROOM_TOKEN && token !== ctx.env.ROOM_TOKEN) throw reject('wrong room token');
    client.data.name = name;
    const visits = await ctx.kv.incr(`visits:${name}`);
    ctx.log.info('joined', { name, visits });
    // These fields join the connect `_result` info object the client receives.
    return { greeting: `${ctx.env.GREETING ?? 'hello'}, ${name}`, visits };
  },

  onDisconnection(client, ctx) {
    ctx.log.info('left', { name: String(client.data.name) });
  },

  rpc: {
    whoami(client) {
      return { id: client.id, name: String(client.data.name), address: client.address };
    },
    // Calls back into the client (its NetConnection client's `ping`) and reports the answer.
    async ping(client) {
      const answer = await client.call('ping', Date.now());
      return { clientSaid: answer };
    },
    // A counter shared by every client of the app (ctx.kv, app-scoped).
    async count(_client, _args, ctx) {
      return ctx.kv.incr('messages');
    },
    echo(_client, args) {
      return args.length === 1 ? args[0] : args;
    },
  },
});
