/**
 * Grid data as JSON text, in the DAG-JSON conventions: a link is
 * `{"/": "<cid>"}`, bytes are `{"/": {"bytes": "<base64>"}}`, and integers
 * beyond 2^53 are written as exact JSON numbers. Printing is wire/json.ts's
 * (the web page prints the same way); parsing arguments is here.
 *
 * Numbers are exact both ways. JSON.parse reads 9007199254740993 as
 * 9007199254740992, and Node 20's JSON.parse has no reviver access to a
 * number's source text, so arguments are parsed with lossless-json (pinned;
 * no dependencies, keeps every number's text, refuses duplicate keys that
 * disagree, stores a `__proto__` key as data): an integer beyond 2^53 becomes
 * a bigint, up to CBOR's 64-bit range. Printing, a bigint is its digits and
 * -0 is `-0` (JSON.stringify would print 0).
 */
import { isInteger, parse as parseLossless } from 'lossless-json';
import { quote } from '../interface/ids.js';
import { MAX_INTEGER, MIN_INTEGER } from '../wire/cbor.js';

export { toJsonText } from '../wire/json.js';

/**
 * A JSON number as grid data, exactly: an integer (no fraction, no exponent)
 * is a number while it is safe and a bigint beyond, refused past CBOR's
 * 64-bit integers; a number with a fraction or an exponent is the nearest
 * 64-bit float, as in any JSON reader, refused if it overflows to infinity.
 */
const exactNumber = (what: string) => (text: string): number | bigint => {
  if (isInteger(text)) {
    const value = Number(text);
    if (Number.isSafeInteger(value)) return value; // -0 stays -0
    const big = BigInt(text);
    if (big < MIN_INTEGER || big > MAX_INTEGER) throw new UsageError(`${what}: the integer ${text} is beyond the grid's integers (-2^64 to 2^64-1)`);
    return big;
  }
  const value = Number(text);
  if (!Number.isFinite(value)) throw new UsageError(`${what}: ${text} is beyond a 64-bit float`);
  return value;
};

/** Parse one CLI argument as JSON grid data (links and bytes in DAG-JSON form), its numbers exact. */
export const parseJsonArg = (text: string, what: string): unknown => {
  let parsed: unknown;
  try {
    parsed = parseLossless(text, undefined, exactNumber(what));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${what} is not valid JSON: ${quote(text)} (${(error as Error).message}); strings need quotes, e.g. '"Ada"'`);
  }
  return fromDagJson(parsed);
};

const fromDagJson = (value: unknown): unknown => {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map(fromDagJson);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === '/') {
    const inner = record['/'];
    if (inner !== null && typeof inner === 'object' && Object.keys(inner).length === 1 && typeof (inner as { bytes?: unknown }).bytes === 'string') {
      return new Uint8Array(Buffer.from((inner as { bytes: string }).bytes, 'base64'));
    }
  }
  const out: Record<string, unknown> = {};
  // defineProperty: a `__proto__` key is data, not the object's prototype.
  for (const key of keys) Object.defineProperty(out, key, { value: fromDagJson(record[key]), enumerable: true, writable: true, configurable: true });
  return out;
};

export class UsageError extends Error {
  /** A stable code for scripts (`--json` prints it): ERR_USAGE, or a narrower one such as ERR_NO_SUCH_FILE. */
  readonly code: string;
  constructor(message: string, code = 'ERR_USAGE') {
    super(message);
    this.code = code;
    this.name = 'UsageError';
  }
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `10m`, `2h`, `7d` to milliseconds. */
export const parseDuration = (text: string, what: string): number => {
  const match = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  const ms = match ? Number(match[1]) * DURATION_UNITS[match[2]!]! : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new UsageError(`${what} takes a duration such as 30s, 10m, 2h or 7d (got ${quote(text)})`);
  return ms;
};
