/**
 * How `ctx.kv` values are stored (as strings, in Redis and in MemoryKv alike, so `fnhost dev`
 * behaves like a cluster): JSON, with tagged objects `{"$t": tag, "v": …}` for what JSON
 * can't hold.
 *
 * - JSON types round-trip; `undefined` reads back as null (top level, array items) or is
 *   left out (object properties), as JSON.stringify does.
 * - Date, Uint8Array (Buffer reads back as Uint8Array), bigint, NaN and ±Infinity
 *   round-trip through tags.
 * - A plain object that itself has a `$t` property is wrapped (`{"$t":"obj","v":{…}}`), so
 *   user data can never be mistaken for a tag.
 * - A finite number is stored as a bare JSON number, which is also a valid Redis float:
 *   `kv.incr` works on the stored text directly.
 * - Anything else (Map, Set, functions, class instances, cycles) is refused with a TypeError.
 */

const TAG = '$t';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Encodes `value` for storage; throws a TypeError naming what can't be stored. */
export function encodeValue(value: unknown): string {
  return JSON.stringify(toJson(value, new Set()));
}

/** Decodes what `encodeValue` produced. */
export function decodeValue(text: string): unknown {
  let json: Json;
  try {
    json = JSON.parse(text) as Json;
  } catch {
    throw new Error(`kv: stored value is not fnhost-encoded JSON: ${JSON.stringify(text.slice(0, 40))}`);
  }
  return fromJson(json);
}

function toJson(value: unknown, ancestors: Set<object>): Json {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : tagged('num', String(value));
    case 'bigint':
      return tagged('bigint', value.toString());
    case 'object':
      break;
    default:
      throw new TypeError(`kv: cannot store a ${typeof value}`);
  }
  if (value === null) return null;
  const kind = Object.prototype.toString.call(value).slice(8, -1);
  // Tags via toString, not instanceof: values may come from another realm (the sandbox).
  if (kind === 'Date') {
    const ms = (value as Date).getTime();
    return tagged('date', Number.isNaN(ms) ? null : ms);
  }
  if (kind === 'Uint8Array') {
    const bytes = value as Uint8Array;
    return tagged('bytes', Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'));
  }
  if (ancestors.has(value)) throw new TypeError('kv: cannot store a circular structure');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => toJson(item, ancestors));
    if (kind !== 'Object' || !isPlain(value)) {
      throw new TypeError(
        `kv: cannot store a ${kind === 'Object' ? value.constructor?.name || 'class instance' : kind}; ` +
          'values may be JSON types, Date, Uint8Array or bigint',
      );
    }
    const entries: [string, Json][] = [];
    for (const [k, v] of Object.entries(value)) if (v !== undefined) entries.push([k, toJson(v, ancestors)]);
    const object = Object.fromEntries(entries) as { [key: string]: Json };
    return Object.hasOwn(object, TAG) ? tagged('obj', object) : object;
  } finally {
    ancestors.delete(value);
  }
}

function fromJson(json: Json): unknown {
  if (json === null || typeof json !== 'object') return json;
  if (Array.isArray(json)) return json.map(fromJson);
  if (!Object.hasOwn(json, TAG)) return decodeObject(json);
  const v = json.v;
  switch (json[TAG]) {
    case 'obj':
      return decodeObject(v as { [key: string]: Json });
    case 'num':
      return Number(v);
    case 'bigint':
      return BigInt(v as string);
    case 'date':
      return new Date(v === null ? Number.NaN : (v as number));
    case 'bytes':
      return new Uint8Array(Buffer.from(v as string, 'base64'));
    default:
      throw new Error(`kv: stored value has an unknown tag ${JSON.stringify(json[TAG])}`);
  }
}

/** `fromEntries` defines properties, so a stored "__proto__" key stays a plain key. */
function decodeObject(json: { [key: string]: Json }): Record<string, unknown> {
  return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, fromJson(v)]));
}

function tagged(tag: string, v: Json): Json {
  return { [TAG]: tag, v };
}

/** Object literal or Object.create(null), from any realm. */
function isPlain(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === null || Object.getPrototypeOf(proto) === null;
}
