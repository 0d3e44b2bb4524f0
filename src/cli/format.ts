/**
 * Grid data as JSON text, in the DAG-JSON conventions: a link is
 * `{"/": "<cid>"}`, bytes are `{"/": {"bytes": "<base64>"}}`, and integers
 * beyond 2^53 are written as exact JSON numbers.
 */
import { quote } from '../caps/ids.js';

const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64').replace(/=+$/, '');

export const toJsonText = (value: unknown, indent?: number): string => {
  const placeholders: string[] = [];
  const text = JSON.stringify(
    value,
    function replacer(this: unknown, _key, v) {
      if (typeof v === 'bigint') {
        placeholders.push(v.toString());
        return `\u0000big${placeholders.length - 1}\u0000`;
      }
      if (v instanceof Uint8Array) return { '/': { bytes: toBase64(v) } };
      return v;
    },
    indent,
  );
  return text.replace(/"\\u0000big(\d+)\\u0000"/g, (_m, index) => placeholders[Number(index)]!);
};

/** Parse one CLI argument as JSON grid data (links and bytes in DAG-JSON form). */
export const parseJsonArg = (text: string, what: string): unknown => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
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
  for (const key of keys) out[key] = fromDagJson(record[key]);
  return out;
};

export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    super(message);
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
