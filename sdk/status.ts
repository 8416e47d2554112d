import type { AmfObject, AmfValue } from '../runtime/rtmfp/amf-value.ts';

/** A status the server answered with: `code`, `description` and the whole info object. */
export class StatusError extends Error {
  readonly code: string;
  readonly description: string;
  readonly info: AmfValue;

  constructor(info: AmfValue, fallback: string) {
    const o = isRecord(info) ? info : {};
    const description = typeof o.description === 'string' ? o.description : fallback;
    super(description);
    this.name = 'StatusError';
    this.code = typeof o.code === 'string' ? o.code : 'NetConnection.Call.Failed';
    this.description = description;
    this.info = info;
  }
}

/** Whether an AMF value is a plain object (an info object), not an array, date or bytes. */
export function isRecord(v: AmfValue): v is AmfObject {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Date) &&
    !(v instanceof Uint8Array)
  );
}
