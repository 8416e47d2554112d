import { EventEmitter } from 'node:events';
import type { AmfObject, AmfValue } from '../runtime/rtmfp/amf-value.ts';
import type { MediaMessage } from '../runtime/rtmfp/media-message.ts';
import type { TCClientStream, TCClientStreamHandler } from '../runtime/rtmfp/tc-client-stream.ts';
import { isRecord, StatusError } from './status.ts';

/** How long `publish`/`play` wait for the server's answer by default (ms). */
export const STREAM_START_TIMEOUT_MS = 10_000;

/** What a NetStream needs from its NetConnection. */
export interface StreamHost {
  /** `createStream`; rejects with the server's `_error` as a StatusError. */
  createStream(handler: TCClientStreamHandler): Promise<TCClientStream>;
  deleteStream(stream: TCClientStream): void;
  /** Calls `listener` once when the connection closes; returns what stops that. */
  onClose(listener: () => void): () => void;
}

/**
 * What a publish or play shares: a stream from `createStream`, its onStatus (`status` events),
 * the start that waits for one success code, and `close` (closeStream + deleteStream). Events:
 * `status` (info object), `close` once.
 */
export abstract class NetStream extends EventEmitter {
  /** The stream name given to publish/play. */
  readonly name: string;
  closed = false;
  protected stream: TCClientStream | undefined;
  private readonly host: StreamHost;
  private readonly unwatch: () => void;
  /** The start under way: gets every status until it settles. */
  private starting: ((info: AmfValue) => void) | undefined;

  protected constructor(host: StreamHost, name: string) {
    super();
    this.host = host;
    this.name = name;
    this.unwatch = host.onClose(() => this.end());
  }

  /** Messages from the server on this stream that did not decode (dropped). */
  get malformed(): number {
    return this.stream?.malformed ?? 0;
  }

  /** Stops publishing/playing and deletes the stream; the connection stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    const stream = this.stream;
    if (stream) {
      stream.closeStream();
      this.host.deleteStream(stream);
    }
    this.end();
  }

  /**
   * createStream, then `command` on it; resolves on the `success` status code, rejects with a
   * StatusError on a failure status (RTMFP-NOTES §5.3: level "error", or Cumulus's "status"
   * failures), a refused flow, the connection closing, or after `timeoutMs`.
   */
  protected async start(
    command: (stream: TCClientStream) => void,
    success: string,
    timeoutMs: number,
  ): Promise<void> {
    const handler: TCClientStreamHandler = {
      status: (info) => this.onStatus(info),
      media: (m) => this.onMedia(m),
      refused: (code) =>
        this.onStatus(errorInfo(`${this.what} refused: the server rejected its flow (exception ${code})`)),
    };
    try {
      this.stream = await this.host.createStream(handler);
      if (this.closed) throw new StatusError(this.closedInfo(), `${this.what} closed`);
      await new Promise<void>((resolve, reject) => {
        const timeout = setTimeout(() => {
          this.starting = undefined;
          const description = `${this.what}: no ${success} within ${timeoutMs} ms`;
          reject(new StatusError(errorInfo(description), description));
        }, timeoutMs);
        this.starting = (info) => {
          const code = isRecord(info) ? info.code : undefined;
          if (code !== success && !isFailure(info)) return;
          clearTimeout(timeout);
          this.starting = undefined;
          if (code === success) resolve();
          else reject(new StatusError(info, `${this.what} failed`));
        };
        if (this.stream) command(this.stream);
      });
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /** A media message on this stream (only a player has any). */
  protected onMedia(_m: MediaMessage): void {}

  /** The stream is over for the user: once, whether closed here or with the connection. */
  protected end(): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch();
    this.starting?.(this.closedInfo());
    this.emit('close');
  }

  /** "publish \"name\"" / "play \"name\"", for messages. */
  protected abstract get what(): string;

  private onStatus(info: AmfValue): void {
    this.starting?.(info);
    this.emit('status', info);
  }

  private closedInfo(): AmfObject {
    return errorInfo(`${this.what}: the stream was closed`, 'NetStream.Failed');
  }
}

/** Failure codes as tcserver, Cumulus and FMS send them; Cumulus sends them with level "status". */
const FAILURE_CODE = /\.(BadName|Failed|Denied|StreamNotFound|Rejected)$/;

function isFailure(info: AmfValue): boolean {
  if (!isRecord(info)) return false;
  return info.level === 'error' || (typeof info.code === 'string' && FAILURE_CODE.test(info.code));
}

function errorInfo(description: string, code = 'NetStream.Failed'): AmfObject {
  return { level: 'error', code, description };
}
