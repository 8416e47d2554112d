import type { AmfValue } from '../runtime/rtmfp/amf-value.ts';
import { isRecord } from './status.ts';

/** Redirects a connect or a play follows at most, so two servers cannot bounce it forever. */
export const MAX_REDIRECTS = 5;

/** The options of a connection made again elsewhere: everything but the old one's port and session ID. */
export function redirected<T extends { localPort?: number; sessionId?: number }>(
  options: T,
): Omit<T, 'localPort' | 'sessionId'> {
  const { localPort: _port, sessionId: _id, ...rest } = options;
  return rest;
}

/**
 * Where a Play.Failed sends the player: `ex.redirect`, or the first rtmfp:// URL in its
 * description (Cumulus apps' convention, RTMFP-NOTES §9), as a URL with that server's host and
 * port and `current`'s path (the same app and query).
 */
export function playRedirectOf(info: AmfValue, current: string): string | undefined {
  if (!isRecord(info)) return undefined;
  const ex = info.ex;
  const named =
    (isRecord(ex) && typeof ex.redirect === 'string' ? ex.redirect : undefined) ??
    (typeof info.description === 'string' ? /rtmfp:\/\/[^\s"'<>]+/i.exec(info.description)?.[0] : undefined);
  const server = named ? /^(?:rtmfp:\/\/)?((?:\[[^\]]+\]|[^:/\s]+)(?::\d+)?)/i.exec(named)?.[1] : undefined;
  if (!server) return undefined;
  const path = /^rtmfp:\/\/[^/]*(\/.*)?$/i.exec(current)?.[1] ?? '/';
  return `rtmfp://${server}${path}`;
}

/** The URL of a redirect info object (`ex.code` 302, `ex.redirect`), if it is one. */
export function redirectOf(info: AmfValue): string | undefined {
  const ex = isRecord(info) ? info.ex : undefined;
  if (!isRecord(ex) || ex.code !== 302 || typeof ex.redirect !== 'string') return undefined;
  return /^rtmfp:\/\//i.test(ex.redirect) ? ex.redirect : undefined;
}
