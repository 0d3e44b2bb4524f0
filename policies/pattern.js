/**
 * Argument pattern: the call's arguments must match `args`, a pattern
 * written as plain JSON:
 *
 *   "text", 3, true, null      that value exactly
 *   { "$any": true }           anything
 *   { "$type": "string" }      string, number, integer, boolean, null, bytes, link, list or record
 *   { "$min": 0, "$max": 10 }  a number in that range (either bound may be left out)
 *   { "$maxLength": 64 }       a string or list no longer than that
 *   { "$oneOf": [p, …] }       any one of the patterns
 *   [p, …]                     a list of exactly that many items, each matching its pattern
 *   { "key": p, … }            a record with exactly those keys, each matching
 *
 * `grid delegate --pattern '[{"$type":"string"},{"$max":100}]'`.
 */
const typeOf = (value) => {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (value instanceof Uint8Array) return 'bytes';
  if (typeof value === 'object') return Object.keys(value).length === 1 && '/' in value ? 'link' : 'record';
  // An integer beyond 2^53 arrives as a bigint: a number all the same.
  return typeof value === 'bigint' ? 'number' : typeof value;
};

const OPERATORS = ['$any', '$type', '$min', '$max', '$maxLength', '$oneOf'];

const isOperator = (pattern) => typeOf(pattern) === 'record' && Object.keys(pattern).some((key) => OPERATORS.includes(key));

/** Why `value` does not match `pattern` (at `where`), or undefined if it does. */
const mismatch = (pattern, value, where) => {
  if (isOperator(pattern)) {
    if (pattern.$any === true) return undefined;
    if (pattern.$oneOf !== undefined) {
      return pattern.$oneOf.some((option) => mismatch(option, value, where) === undefined) ? undefined : `${where} matches none of its choices`;
    }
    const type = typeOf(value);
    if (pattern.$type !== undefined) {
      const ok = pattern.$type === 'integer' ? typeof value === 'bigint' || Number.isInteger(value) : type === pattern.$type;
      if (!ok) return `${where} is not a ${pattern.$type}`;
    }
    // A bigint compares with a number exactly.
    if (pattern.$min !== undefined && !(type === 'number' && value >= pattern.$min)) return `${where} is below ${pattern.$min}`;
    if (pattern.$max !== undefined && !(type === 'number' && value <= pattern.$max)) return `${where} is above ${pattern.$max}`;
    if (pattern.$maxLength !== undefined && !((typeof value === 'string' || Array.isArray(value)) && value.length <= pattern.$maxLength)) {
      return `${where} is longer than ${pattern.$maxLength}`;
    }
    return undefined;
  }
  const type = typeOf(pattern);
  if (type === 'list') {
    if (!Array.isArray(value) || value.length !== pattern.length) return `${where} is not a list of ${pattern.length}`;
    for (let i = 0; i < pattern.length; i += 1) {
      const why = mismatch(pattern[i], value[i], `${where}[${i}]`);
      if (why) return why;
    }
    return undefined;
  }
  if (type === 'record') {
    if (typeOf(value) !== 'record') return `${where} is not a record`;
    const keys = Object.keys(pattern);
    const extra = Object.keys(value).find((key) => !keys.includes(key));
    if (extra !== undefined) return `${where} has an unexpected field ${JSON.stringify(extra)}`;
    for (const key of keys) {
      const why = mismatch(pattern[key], value[key], `${where}.${key}`);
      if (why) return why;
    }
    return undefined;
  }
  return value === pattern ? undefined : `${where} is not ${JSON.stringify(pattern)}`;
};

export const screen = (ctx, { args }) => {
  const why = mismatch(ctx.env.args, args, 'arguments');
  return why === undefined ? { forward: true } : { refuse: `argument pattern: ${why}` };
};
