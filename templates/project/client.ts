// Talks to the app: `npx node client.ts [rtmfp://HOST:PORT/{{name}}]` while `npx fnhost dev` runs.
import { connect } from 'fnhost/client';

const url = process.argv[2] ?? 'rtmfp://127.0.0.1:1935/{{name}}';
const nc = await connect(url, 'alice');
const { greeting } = nc.info as { greeting: string }; // onConnection's result
console.log(greeting);
console.log(await nc.call('hello', 'hi'));
console.log(await nc.call('count'));
await nc.close();
