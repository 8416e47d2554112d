import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/** True when this process can bind `host:port` itself (nobody holds it), over TCP or UDP. */
export async function bindable(kind: 'tcp' | 'udp', host: string, port: number): Promise<boolean> {
  if (kind === 'udp') {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    return new Promise((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(port, host, () => socket.close(() => resolve(true)));
    });
  }
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
