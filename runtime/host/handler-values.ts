import type { Strategy } from '../cluster/selection.ts';
import { type Address, formatAddress, parseAddress } from '../rtmfp/address.ts';
import { type AmfObject, type AmfValue, EcmaArray, MAX_AMF_DEPTH, TypedObject } from '../rtmfp/amf-value.ts';
import { AMF3_MAX_LENGTH } from '../rtmfp/amf3.ts';
import type { BalanceRequest } from './balancer.ts';

/**
 * Values crossing between the network (AMF) and handlers. In: AMF values as plain data a
 * sandbox can copy. Out: what the node accepts from the handlers whose results it acts on
 * (onHandshake, onConnection, rpc.NAME), checked before it acts, so that a wrong value fails
 * that one event with a message naming what was wrong instead of throwing where the node
 * encodes or sends it.
 */

/**
 * Addresses one onHandshake may redirect to: the RFC 7016 §2.3.5 Redirect then fits one
 * datagram of the usual ~1,200-byte path MTU even when every address is IPv6 (19 bytes each).
 */
export const MAX_REDIRECT_ADDRESSES = 16;

/** Longest text a message quotes from a value: a message must stay one readable line. */
const MAX_QUOTED = 80;

/** AMF values to plain data a sandbox can copy (class instances become plain objects). */
export function toPlain(v: AmfValue): unknown {
  if (v instanceof EcmaArray) return mapValues(v.entries);
  if (v instanceof TypedObject) return mapValues(v.fields);
  if (Array.isArray(v)) return v.map(toPlain);
  if (isPlainObject(v)) return mapValues(v as AmfObject);
  return v;
}

function mapValues(o: AmfObject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(o)) out[k] = toPlain(val);
  return out;
}

/** Why rpc.NAME's result cannot be its `_result`; undefined when it can. */
export function rpcResultProblem(value: unknown): string | undefined {
  const p = amfProblem(value, 0);
  return p && notAmf("the handler's result", p);
}

/** Why `client.call(name, ...args)`'s arguments cannot be sent; undefined when they can. */
export function callArgumentsProblem(name: string, args: unknown[]): string | undefined {
  const p = amfProblem(args, 0);
  return p && notAmf(`the argument list of client.call('${name}')`, p);
}

/** Why onConnection's result cannot be extra `_result` info fields; undefined when it can. */
export function connectResultProblem(value: unknown): string | undefined {
  if (value == null) return undefined;
  if (!isPlainObject(value)) {
    return `the handler returned ${describe(value)}; return an object of extra _result info fields, or nothing`;
  }
  // The fields join the info object, itself the command's first argument: one level down.
  const p = amfProblem(value, 1);
  return p && notAmf('its _result info', p);
}

/**
 * onHandshake's result as the addresses it names (host names unresolved; none: answer here),
 * or why it names none.
 */
export function redirectTargets(value: unknown): Address[] | string {
  if (value == null) return [];
  if (typeof value !== 'string' && !Array.isArray(value)) return wrongHandshakeResult(describe(value));
  const list: unknown[] = typeof value === 'string' ? [value] : value;
  const bad = list.findIndex((a) => typeof a !== 'string');
  if (bad >= 0) return wrongHandshakeResult(`an array holding ${describe(list[bad])} at [${bad}]`);
  if (list.length > MAX_REDIRECT_ADDRESSES) {
    return `the handler returned ${list.length} addresses; a redirect carries at most ${MAX_REDIRECT_ADDRESSES}`;
  }
  const targets: Address[] = [];
  for (const text of list as string[]) {
    const address = parseAddress(text);
    if (!address) return `the handler returned ${quote(text)}, which is not "host:port"`;
    targets.push(address);
  }
  return targets;
}

/** Why onHandshake's `target` names nowhere: `reason`, from resolving its host name. */
export function unresolvedTarget(target: Address, reason: string): string {
  return `the handler returned ${quote(formatAddress(target))}; ${reason}`;
}

function wrongHandshakeResult(what: string): string {
  return `the handler returned ${what}; return nothing, "host:port" or a list of them`;
}

/** A short description of a value for a message: `a number (42)`, `a Map`, `the string "x"`. */
function describe(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return `the string ${quote(value)}`;
    case 'number':
    case 'boolean':
    case 'bigint':
      return `a ${typeof value} (${String(value)})`;
    case 'object':
      break;
    default:
      return withArticle(typeof value);
  }
  if (Array.isArray(value)) return 'an array';
  if (isPlainObject(value)) return 'an object';
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name ? withArticle(name) : 'an object with a class';
}

/** What AMF carries, as a message lists it. */
const AMF_DATA = 'numbers, strings, booleans, null, undefined, Dates, Uint8Arrays, arrays and plain objects';

function notAmf(subject: string, p: AmfProblem): string {
  const what = p.path ? `holds ${p.what} at ${p.path}` : `is ${p.what}`;
  return `${subject} ${what}, which AMF cannot carry; use ${AMF_DATA}`;
}

interface AmfProblem {
  what: string;
  /** Where in the value, `.a[2].b`; empty for the value itself. */
  path: string;
}

/**
 * The first part of `value` that the node's AMF0 writer (runtime/rtmfp/amf0.ts) would refuse
 * or silently turn into something else (a Map into an empty object), with the same depth
 * count: containers nested `depth` levels down already.
 */
function amfProblem(value: unknown, depth: number, ancestors = new Set<object>()): AmfProblem | undefined {
  switch (typeof value) {
    case 'undefined':
    case 'boolean':
    case 'number':
    case 'string':
      return undefined;
    case 'object':
      break;
    default:
      return { what: describe(value), path: '' };
  }
  if (value === null || value instanceof Date) return undefined;
  if (value instanceof Uint8Array) {
    // Written as an AMF3 ByteArray, whose length is a U29.
    return value.length > AMF3_MAX_LENGTH
      ? { what: `a Uint8Array over ${AMF3_MAX_LENGTH} bytes`, path: '' }
      : undefined;
  }
  const array = Array.isArray(value);
  if (!array && !isPlainObject(value)) return { what: describe(value), path: '' };
  if (ancestors.has(value)) return { what: 'a cycle (an object inside itself)', path: '' };
  if (depth >= MAX_AMF_DEPTH) return { what: `objects nested deeper than ${MAX_AMF_DEPTH} levels`, path: '' };
  ancestors.add(value);
  try {
    if (array) {
      for (let i = 0; i < value.length; i++) {
        const inner = amfProblem(value[i], depth + 1, ancestors);
        if (inner) return { what: inner.what, path: `[${i}]${inner.path}` };
      }
      return undefined;
    }
    for (const [key, member] of Object.entries(value)) {
      // AMF0 reads an empty member name as the end of the object.
      if (key === '') return { what: 'an object with an empty member name', path: '' };
      const inner = amfProblem(member, depth + 1, ancestors);
      if (inner) return { what: inner.what, path: `.${key}${inner.path}` };
    }
    return undefined;
  } finally {
    ancestors.delete(value);
  }
}

/** An object literal's kind (prototype Object.prototype or none), not a class instance. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function withArticle(word: string): string {
  return `${/^[aeiou]/i.test(word) ? 'an' : 'a'} ${word}`;
}

/** A string as JSON, cut short. */
function quote(text: string): string {
  return JSON.stringify(text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text);
}

const SELECT_STRATEGIES: readonly Strategy[] = ['round-robin', 'least-loaded', 'all-servers', 'by-hash'];

/** `ctx.servers.select()`'s argument as a BalanceRequest, or why it is not one. */
export function selectRequest(value: unknown): BalanceRequest | string {
  if (!isPlainObject(value)) return `the request must be an object, got ${describe(value)}`;
  const { strategy, key, exceptSelf, maxClients } = value as Record<string, unknown>;
  if (!SELECT_STRATEGIES.includes(strategy as Strategy))
    return `strategy must be one of ${SELECT_STRATEGIES.join(', ')}, got ${describe(strategy)}`;
  if (key !== undefined && typeof key !== 'string') return `key must be a string, got ${describe(key)}`;
  if (exceptSelf !== undefined && typeof exceptSelf !== 'boolean')
    return `exceptSelf must be true or false, got ${describe(exceptSelf)}`;
  if (maxClients !== undefined && !(Number.isSafeInteger(maxClients) && (maxClients as number) > 0))
    return `maxClients must be a positive integer, got ${describe(maxClients)}`;
  return {
    strategy: strategy as Strategy,
    key: key as string | undefined,
    exceptSelf: exceptSelf as boolean | undefined,
    maxClients: maxClients as number | undefined,
  };
}
