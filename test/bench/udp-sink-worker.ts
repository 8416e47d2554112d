import dgram from 'node:dgram';
import { parentPort } from 'node:worker_threads';

/**
 * A UDP socket on 127.0.0.1 that receives and discards, on its own thread, so a send
 * benchmark's thread pays only for sending. Posts its port, then the datagram count on any message.
 */
const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
let received = 0;
socket.on('message', () => {
  received++;
});
socket.bind(0, '127.0.0.1', () => parentPort?.postMessage({ port: socket.address().port }));
parentPort?.on('message', () => parentPort?.postMessage({ received }));
