import { errorText } from '../runtime/error-text.ts';
import type { AmfValue } from '../runtime/rtmfp/amf-value.ts';

/** Handler for a call from the other side: its return value (or promise) is the `_result`. */
export type CallHandler = (...args: AmfValue[]) => AmfValue | Promise<AmfValue>;

/** How a call is answered: `_result` (ok) or `_error` with an info object; absent when no answer is expected. */
export type CallReplyFn = ((ok: boolean, value: AmfValue) => void) | undefined;

/**
 * Runs `handler` for a call of `name` and answers it: its value as `_result`, a throw (or no
 * handler) as `_error` with NetConnection.Call.Failed. Resolves once answered.
 */
export function answerCall(
  handler: CallHandler | undefined,
  name: string,
  args: AmfValue[],
  reply: CallReplyFn,
): Promise<void> {
  if (!handler) {
    reply?.(false, callFailed(`no handler for ${name}`));
    return Promise.resolve();
  }
  return Promise.resolve()
    .then(() => handler(...args))
    .then(
      (value) => reply?.(true, value ?? null),
      (e: unknown) => reply?.(false, callFailed(errorText(e))),
    );
}

function callFailed(description: string): AmfValue {
  return { level: 'error', code: 'NetConnection.Call.Failed', description };
}
