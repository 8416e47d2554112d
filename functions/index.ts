import { defineApp, leastLoaded, redirect, reject } from 'fnhost/sdk';

/** Players of each stream on this node (each node runs its own copy of the app). */
const players = new Map<string, number>();

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

  // Live streams: anyone connected may publish a name nobody else publishes in the cluster.
  onPublish(client, stream, ctx) {
    ctx.log.info('publishing', { name: String(client.data.name), stream: stream.name });
  },

  // Past MAX_PLAYERS_PER_NODE players of a stream here, a player is sent to the least-loaded
  // other node (NetStream.Play.Failed with the address; `nc.play(name, { followRedirect: true })`
  // goes there). With no other node to take it, it plays here anyway.
  async onSubscribe(_client, stream, ctx) {
    const limit = Number(ctx.env.MAX_PLAYERS_PER_NODE || Number.POSITIVE_INFINITY);
    const here = players.get(stream.name) ?? 0;
    if (here >= limit) {
      const to = await leastLoaded(ctx, { exceptSelf: true });
      if (to) throw redirect(to);
    }
    players.set(stream.name, here + 1);
  },

  onUnsubscribe(_client, stream) {
    const left = (players.get(stream.name) ?? 1) - 1;
    if (left > 0) players.set(stream.name, left);
    else players.delete(stream.name);
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
    // Who publishes a stream, and how many play it on each node.
    async stream(_client, [name], ctx) {
      const publication = await ctx.publications.get(String(name));
      return publication && { ...publication };
    },
    echo(_client, args) {
      return args.length === 1 ? args[0] : args;
    },
  },
});
