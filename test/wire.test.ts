import test from 'ava';
import fc from 'fast-check';
import { CID } from 'multiformats/cid';
import { encode as cborgEncode, rfc8949EncodeOptions } from 'cborg';
import { decode, decodeMessage, encode, encodeMessage, isMessage, WireError, DEFAULT_LIMITS } from '../src/wire/index.js';
import { blockCid } from '../src/store/index.js';
import { decodeKnowing, encodeFlatMap, encodeLinkForm, linkKey, LinkBytes } from '../src/wire/cbor.js';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const unhex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const token = blockCid(new TextEncoder().encode('a closure'), 0x71);

test('RFC 8949 Appendix A vectors in deterministic form', (t) => {
  const vectors: Array<[unknown, string]> = [
    [0, '00'], [1, '01'], [10, '0a'], [23, '17'], [24, '1818'], [25, '1819'], [100, '1864'], [1000, '1903e8'],
    [1000000, '1a000f4240'], [1000000000000, '1b000000e8d4a51000'], [-1, '20'], [-10, '29'], [-100, '3863'], [-1000, '3903e7'],
    [18446744073709551615n, '1bffffffffffffffff'], [-18446744073709551616n, '3bffffffffffffffff'],
    [1.5, 'f93e00'], [1.1, 'fb3ff199999999999a'], [100000.5, 'fa47c35040'], [65504.5, 'fa477fe080'], [-4.1, 'fbc010666666666666'],
    [5.960464477539063e-8, 'f90001'], [0.00006103515625, 'f90400'],
    [false, 'f4'], [true, 'f5'], [null, 'f6'],
    [new Uint8Array([1, 2, 3, 4]), '4401020304'], ['', '60'], ['a', '6161'], ['IETF', '6449455446'], ['"\\', '62225c'],
    ['\u00fc', '62c3bc'], ['\u6c34', '63e6b0b4'], ['\ud800\udd51', '64f0908591'],
    [[], '80'], [[1, 2, 3], '83010203'], [[1, [2, 3], [4, 5]], '8301820203820405'],
    [{}, 'a0'], [{ a: 1, b: [2, 3] }, 'a26161016162820203'], [['a', { b: 'c' }], '826161a161626163'],
    [{ a: 'A', b: 'B', c: 'C', d: 'D', e: 'E' }, 'a56161614161626142616361436164614461656145'],
  ];
  for (const [value, expected] of vectors) {
    t.is(hex(encode(value)), expected, String(value));
    const back = decode(unhex(expected));
    if (typeof value === 'bigint') t.is(back, value);
    else t.deepEqual(back, value);
  }
});

test('map keys sort by their encoded bytes (RFC 8949 §4.2.1): shorter first, then bytewise', (t) => {
  t.is(hex(encode({ bb: 1, a: 2, aa: 3, b: 4 })), 'a461610261620462616103626262' + '01');
  t.is(hex(encode({ '\u00e9': 1, z: 2 })), 'a2617a0262c3a901');
});

test('links are tag 42 over 0x00 ‖ CID bytes', (t) => {
  const bytes = encode({ link: token });
  t.is(hex(bytes), `a1646c696e6bd82a5825 00${hex(token.bytes)}`.replace(/ /g, ''));
  const back = decode(bytes) as { link: CID };
  t.true(back.link.equals(token));
});

test('the grid envelope, byte for byte', (t) => {
  const bytes = encodeMessage(token, 'greet', ['Ada']);
  t.is(hex(bytes.subarray(0, 5)), 'da67726964');
  t.is(hex(bytes), `da67726964 83 d82a5825 00${hex(token.bytes)} 656772656574 8163416461`.replace(/ /g, ''));
  t.true(isMessage(bytes));
  const { cid, slots } = decodeMessage(bytes);
  t.true(cid.equals(token));
  t.deepEqual(slots, ['greet', ['Ada']]);
  t.deepEqual(decodeMessage(encodeMessage(token.toString())).slots, []);
});

test('decodeMessage refuses what is not an envelope', (t) => {
  for (const bad of [encode([token, 1]), unhex('da6772696480'), unhex('da677269648101'), unhex('da67726964a0'), unhex('da67726964')]) {
    const error = t.throws(() => decodeMessage(bad), { instanceOf: WireError });
    t.true(['ERR_NOT_A_MESSAGE', 'ERR_TRUNCATED'].includes(error!.code), `${hex(bad)}: ${error!.code}`);
  }
  // The envelope tag is only allowed at the root of a message.
  t.is(t.throws(() => decode(encodeMessage(token)), { instanceOf: WireError })?.code, 'ERR_BAD_TAG');
  t.is(t.throws(() => decodeMessage(encode([1, unhex('00')])), { instanceOf: WireError })?.code, 'ERR_NOT_A_MESSAGE');
});

const hostile: Array<[string, string, string]> = [
  ['non-shortest int (24 as 1817)', '1817', 'ERR_NON_CANONICAL'],
  ['non-shortest int (1 as 190001)', '190001', 'ERR_NON_CANONICAL'],
  ['non-shortest length', '780161', 'ERR_NON_CANONICAL'],
  ['non-shortest float (1.5 as f64)', 'fb3ff8000000000000', 'ERR_NON_CANONICAL'],
  ['float that is an integer', 'f93c00', 'ERR_NON_CANONICAL'],
  ['indefinite array', '9f01ff', 'ERR_INDEFINITE_LENGTH'],
  ['indefinite string', '7f6161ff', 'ERR_INDEFINITE_LENGTH'],
  ['indefinite map', 'bf616101ff', 'ERR_INDEFINITE_LENGTH'],
  ['lone break', 'ff', 'ERR_INDEFINITE_LENGTH'],
  ['unsorted map', 'a2616201616101', 'ERR_NON_CANONICAL'],
  ['length-unsorted map ({"aa":1,"b":2})', 'a262616101616202', 'ERR_NON_CANONICAL'],
  ['duplicate key', 'a2616101616102', 'ERR_DUPLICATE_KEY'],
  ['integer map key', 'a10101', 'ERR_BAD_KEY'],
  ['byte-string map key', 'a1410101', 'ERR_BAD_KEY'],
  ['trailing bytes', '0000', 'ERR_TRAILING_BYTES'],
  ['tag 1 (epoch time)', 'c11a514b67b0', 'ERR_BAD_TAG'],
  ['tag 24 (embedded CBOR)', 'd81841a0', 'ERR_BAD_TAG'],
  ['tag 42 over a string', 'd82a6161', 'ERR_BAD_LINK'],
  ['tag 42 without the 0x00 prefix', 'd82a4401711220', 'ERR_BAD_LINK'],
  ['tag 42 over a bad CID', 'd82a4400ffffff', 'ERR_BAD_LINK'],
  // A CIDv1 whose version byte became 0: CID.decode would read the rest as some other CID.
  ['tag 42 over bytes that are not their CID', 'd82a582500007112206f340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', 'ERR_BAD_LINK'],
  ['non-shortest tag number (42 as d9002a)', 'd9002a582500017112206f340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', 'ERR_NON_CANONICAL'],
  ['non-shortest negative int (-1 as 3800)', '3800', 'ERR_NON_CANONICAL'],
  ['nested map out of order', 'a16161a2616201616101', 'ERR_NON_CANONICAL'],
  ['undefined', 'f7', 'ERR_BAD_SIMPLE'],
  ['simple value 16', 'f0', 'ERR_BAD_SIMPLE'],
  ['simple value 255', 'f8ff', 'ERR_BAD_SIMPLE'],
  ['NaN', 'f97e00', 'ERR_BAD_FLOAT'],
  ['Infinity', 'f97c00', 'ERR_BAD_FLOAT'],
  ['-Infinity (f64)', 'fbfff0000000000000', 'ERR_BAD_FLOAT'],
  ['reserved additional information', '1c', 'ERR_MALFORMED'],
  ['empty input', '', 'ERR_TRUNCATED'],
  ['truncated header', '19', 'ERR_TRUNCATED'],
  ['truncated array', '830102', 'ERR_TRUNCATED'],
  ['2^64-byte string in 9 bytes', '5bffffffffffffffff', 'ERR_TRUNCATED'],
  ['2^32-entry array in 5 bytes', '9affffffff', 'ERR_TRUNCATED'],
  ['2^32-entry map in 5 bytes', 'baffffffff', 'ERR_TRUNCATED'],
  ['invalid UTF-8', '62c328', 'ERR_MALFORMED'],
  ['UTF-8 surrogate', '63eda080', 'ERR_MALFORMED'],
  ['overlong UTF-8', '62c0af', 'ERR_MALFORMED'],
  ['truncated UTF-8 sequence', '61e2', 'ERR_MALFORMED'],
  ['UTF-8 past U+10FFFF', '64f4908080', 'ERR_MALFORMED'],
];

test('hostile inputs are refused with a typed error, without allocating', (t) => {
  for (const [name, input, code] of hostile) {
    const error = t.throws(() => decode(unhex(input)), { instanceOf: WireError }, name);
    t.is(error?.code as string | undefined, code, `${name}: ${error?.message}`);
    t.regex(error!.message, /^CBOR decode error: /);
  }
});

test('well-formed UTF-8 past ASCII decodes', (t) => {
  t.is(decode(unhex('65616263c3a9')), 'abcé');
  t.is(decode(unhex('64f09f9880')), '😀');
});

test('nesting, size and item limits are enforced before decoding', (t) => {
  const deep = new Uint8Array(100_000).fill(0x81);
  t.is(t.throws(() => decode(deep), { instanceOf: WireError })?.code, 'ERR_TOO_DEEP');
  const nested = (depth: number) => new Uint8Array([...new Array(depth).fill(0x81), 0x00]);
  t.notThrows(() => decode(nested(DEFAULT_LIMITS.maxDepth)));
  t.is(t.throws(() => decode(nested(DEFAULT_LIMITS.maxDepth + 1)))?.message.includes('deeper than 64'), true);
  t.is(t.throws(() => decode(nested(5), { maxDepth: 4 }), { instanceOf: WireError })?.code, 'ERR_TOO_DEEP');
  t.is(t.throws(() => decode(encode('x'.repeat(100)), { maxBytes: 50 }), { instanceOf: WireError })?.code, 'ERR_TOO_LARGE');
  t.is(t.throws(() => decode(encode(new Array(100).fill(0)), { maxItems: 50 }), { instanceOf: WireError })?.code, 'ERR_TOO_MANY_ITEMS');
  t.throws(() => decode('not bytes' as never), { instanceOf: TypeError });
});

test('encode refuses what is not grid data', (t) => {
  for (const [value, message] of [
    [undefined, /undefined is not grid data/],
    [{ a: [1, undefined] }, /undefined is not grid data/],
    [() => 1, /a function is not grid data/],
    [Symbol('s'), /symbol is not grid data/],
    [new Map(), /only plain objects are grid data \(got Map\)/],
    [new Date(0), /only plain objects are grid data \(got Date\)/],
    [new (class Point {})(), /only plain objects are grid data/],
    [Number.NaN, /NaN|number is not grid data/],
    [Number.POSITIVE_INFINITY, /^Infinity is not grid data/],
  ] as Array<[unknown, RegExp]>) {
    t.throws(() => encode(value), { instanceOf: TypeError, message }, String(message));
  }
});

test('integers are exact to 64 bits, a bigint that fits a safe number has the same bytes as that number, and -0 keeps its sign', (t) => {
  for (const [big, small] of [[5n, 5], [-1n, -1], [9007199254740991n, 9007199254740991], [-9007199254740991n, -9007199254740991]] as const) {
    t.is(hex(encode(big)), hex(encode(small)), `${big}n is encoded as ${small}`);
    t.is(decode(encode(big)), small, 'and decodes as the number');
  }
  for (const big of [9007199254740992n, 9007199254740993n, 2n ** 63n - 1n, 2n ** 64n - 1n, -(2n ** 64n)]) {
    const bytes = encode(big);
    t.true(bytes[0]! >> 5 === 0 || bytes[0]! >> 5 === 1, `${big} is a CBOR integer (major type 0 or 1)`);
    t.is(decode(bytes), big);
  }
  for (const big of [2n ** 64n, -(2n ** 64n) - 1n]) {
    t.throws(() => encode(big), { instanceOf: RangeError, message: `integer ${big} is beyond the grid's integers (-2^64 to 2^64-1)` });
  }
  t.is(hex(encode(-0)), 'f98000', '-0 is the half float -0, its shortest form');
  t.true(Object.is(decode(unhex('f98000')), -0));
  t.deepEqual(decode(encode([0, -0, { z: -0 }])), [0, -0, { z: -0 }]);
  t.true(Object.is((decode(encode([-0])) as number[])[0], -0));
  for (const longer of ['fa80000000', 'fb8000000000000000']) {
    t.throws(() => decode(unhex(longer)), { code: 'ERR_NON_CANONICAL' }, `${longer}: -0 in a wider float`);
  }
  t.throws(() => encode(Number.NaN), { instanceOf: TypeError, message: 'NaN is not grid data (numbers are finite)' });
  t.throws(() => encode(Number.NEGATIVE_INFINITY), { instanceOf: TypeError, message: '-Infinity is not grid data (numbers are finite)' });
});

// Arbitrary grid data: what encode accepts and decode returns.
const cidArb = fc.uint8Array({ minLength: 1, maxLength: 64 }).map((bytes) => blockCid(bytes, 0x71));
const leaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }).filter((x) => x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.uint8Array({ maxLength: 40 }),
  cidArb,
);
const gridData = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('map')),
  array: fc.array(tie('value'), { maxLength: 5 }),
  map: fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 8 }), tie('value'), { maxKeys: 5 }),
})).value;

const normalise = (value: unknown): unknown => {
  if (value instanceof CID) return { cid: value.toString() };
  if (value instanceof Uint8Array) return { bytes: hex(value) };
  if (Array.isArray(value)) return value.map(normalise);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  return value;
};

test('property: decode(encode(x)) = x for grid data', (t) => {
  fc.assert(
    fc.property(gridData, (value) => {
      t.deepEqual(normalise(decode(encode(value))), normalise(value));
    }),
    { numRuns: 2000 },
  );
});

test('property: our key order is RFC 8949 order', (t) => {
  fc.assert(
    fc.property(fc.dictionary(fc.string({ unit: 'binary', maxLength: 30 }), fc.integer(), { maxKeys: 12 }), (map) => {
      t.is(hex(encode(map)), hex(cborgEncode(map, rfc8949EncodeOptions)));
    }),
    { numRuns: 1000 },
  );
});

const decodeOrWireError = (bytes: Uint8Array) => {
  try {
    const value = decode(bytes);
    return { ok: true as const, value };
  } catch (error) {
    if (!(error instanceof WireError)) throw new Error(`not a WireError: ${(error as Error)?.message}`);
    return { ok: false as const };
  }
};

test('property: any bytes either decode to a value that encodes back to the same bytes, or are refused with a WireError', (t) => {
  let accepted = 0;
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
      const result = decodeOrWireError(bytes);
      if (result.ok) {
        accepted += 1;
        t.is(hex(encode(result.value)), hex(bytes));
      }
    }),
    { numRuns: 20_000 },
  );
  t.true(accepted > 0, 'some random inputs are valid CBOR');
});

test('property: mutated valid encodings are accepted canonically or refused', (t) => {
  fc.assert(
    fc.property(gridData, fc.nat(), fc.integer({ min: 1, max: 255 }), (value, position, flip) => {
      const bytes = encode(value).slice();
      bytes[position % bytes.length]! ^= flip;
      const result = decodeOrWireError(bytes);
      if (result.ok) t.is(hex(encode(result.value)), hex(bytes));
    }),
    { numRuns: 20_000 },
  );
});

test('encoded bytes own their memory: a small encoding is no view into a shared pool (kept, it would pin it; posted, copy it)', (t) => {
  for (const length of [1, 100, 200, 240, 300, 5000]) {
    for (const bytes of [encode({ text: 'x'.repeat(length) }), encodeLinkForm({ text: 'x'.repeat(length) })]) t.is(bytes.buffer.byteLength, bytes.byteLength, `${length} characters`);
  }
});

// A message of a link and then small unsigned integers, byte strings, ASCII text, null or booleans is
// written and read without the codec's tokens (wire/envelope.ts): the same bytes, the same messages, the same refusals.
const flatSlot = fc.oneof(
  fc.nat({ max: 2 ** 32 - 1 }),
  fc.constantFrom(0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -1, -0, 1.5),
  fc.uint8Array({ maxLength: 300 }),
  fc.string({ unit: 'binary-ascii', maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 5 }),
  fc.constantFrom(null, true, false),
);
const flatSlots = fc.array(flatSlot, { maxLength: 25 });
const envelopeOf = (cid: CID, slots: readonly unknown[]) => new Uint8Array([0xda, 0x67, 0x72, 0x69, 0x64, ...encode([cid, ...slots])]);
/** What the codec makes of a message's bytes: [cid, ...slots], or its refusal's code. */
const byCodec = (bytes: Uint8Array, limits = {}) => {
  try {
    return { items: normalise(decode(bytes.subarray(5), limits)) };
  } catch (error) {
    return { code: (error as WireError).code };
  }
};
const byMessage = (bytes: Uint8Array, limits = {}) => {
  try {
    const { cid, slots } = decodeMessage(bytes, limits);
    return { items: normalise([cid, ...slots]) };
  } catch (error) {
    return { code: (error as WireError).code };
  }
};

test('property: flat messages are written as the codec writes them, and read (or refused) as it reads them', (t) => {
  fc.assert(
    fc.property(cidArb, flatSlots, fc.nat(), fc.integer({ min: 1, max: 255 }), (cid, slots, position, flip) => {
      const bytes = encodeMessage(cid, ...slots);
      t.is(hex(bytes), hex(envelopeOf(cid, slots)));
      t.deepEqual(byMessage(bytes), byCodec(bytes));
      t.true(Object.isFrozen(decodeMessage(bytes).slots));
      // Past the envelope's tag, every mutation is read or refused as the codec reads it (a message that is not [link, …] aside).
      const mutated = bytes.slice();
      mutated[5 + (position % (bytes.length - 5))]! ^= flip;
      const codec = byCodec(mutated);
      const message = byMessage(mutated);
      if (codec.items && !(Array.isArray(codec.items) && codec.items.length > 0 && (codec.items[0] as { cid?: string }).cid)) t.deepEqual(message, { code: 'ERR_NOT_A_MESSAGE' });
      else t.deepEqual(message, codec);
    }),
    { numRuns: 5000 },
  );
});

test('a flat message is held to the limits it is read under, and its byte strings are its own', (t) => {
  const bytes = encodeMessage(token, 7, unhex('0102'), 'ok');
  t.is(t.throws(() => decodeMessage(bytes, { maxItems: 6 }), { instanceOf: WireError })?.code, 'ERR_TOO_MANY_ITEMS');
  t.is(t.throws(() => decodeMessage(bytes, { maxDepth: 2 }), { instanceOf: WireError })?.code, 'ERR_TOO_DEEP');
  t.is(t.throws(() => decodeMessage(bytes, { maxBytes: bytes.length - 1 }), { instanceOf: WireError })?.code, 'ERR_TOO_LARGE');
  t.deepEqual(decodeMessage(bytes, { maxItems: 7, maxDepth: 3, maxBytes: bytes.length }).slots, [7, unhex('0102'), 'ok']);
  const frame = new Uint8Array([...bytes, 0]).subarray(0, bytes.length);
  const [, read] = decodeMessage(frame).slots as [number, Uint8Array];
  t.not(read.buffer, frame.buffer, 'copied out of the frame');
  t.is(read.buffer.byteLength, read.byteLength);
  // Trailing bytes, a truncated slot, a non-shortest integer: refused as the codec refuses them.
  t.is(t.throws(() => decodeMessage(new Uint8Array([...bytes, 0])), { instanceOf: WireError })?.code, 'ERR_TRAILING_BYTES');
  t.is(t.throws(() => decodeMessage(bytes.subarray(0, bytes.length - 1)), { instanceOf: WireError })?.code, 'ERR_TRUNCATED');
  const long = encodeMessage(token, 1);
  t.is(t.throws(() => decodeMessage(new Uint8Array([...long.subarray(0, -1), 0x18, 0x01])), { instanceOf: WireError })?.code, 'ERR_NON_CANONICAL');
});

test('property: flat arrays (safe integers, ASCII text, bytes, null, booleans, links) are written as cborg writes them', (t) => {
  const flatItem = fc.oneof(
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(0, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), -(2 ** 32) - 1, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, -0, 0.5, 2 ** 53),
    fc.string({ unit: 'binary-ascii', maxLength: 300 }),
    fc.string({ unit: 'grapheme', maxLength: 5 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.constantFrom(null, true, false),
    cidArb,
    cidArb.map((cid) => new LinkBytes(cid.bytes)),
  );
  fc.assert(
    fc.property(fc.array(flatItem, { maxLength: 30 }), (items) => {
      // Inside a map the array is written by cborg: {"": items} is a1 60 followed by the array.
      const byCborg = encode({ '': items }).subarray(2);
      t.is(hex(encode(items)), hex(byCborg));
      t.is(hex(encodeLinkForm(items)), hex(byCborg));
    }),
    { numRuns: 3000 },
  );
});

test('property: arrays of flat items and flat arrays of them (one level) are written as cborg writes them', (t) => {
  const flatItem = fc.oneof(
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(0, -1, 23, 24, 255, 256, 65536, 2 ** 32, -0, 0.5, 2 ** 53),
    fc.string({ unit: 'binary-ascii', maxLength: 60 }),
    fc.string({ unit: 'grapheme', maxLength: 3 }),
    fc.uint8Array({ maxLength: 60 }),
    fc.constantFrom(null, true, false),
    cidArb,
  );
  const item = fc.oneof(flatItem, fc.array(flatItem, { maxLength: 30 }), fc.array(fc.array(flatItem, { maxLength: 3 }), { maxLength: 3 }), fc.constant({ a: 1 }));
  fc.assert(
    fc.property(fc.array(item, { maxLength: 30 }), (items) => {
      t.is(hex(encode(items)), hex(encode({ '': items }).subarray(2)));
    }),
    { numRuns: 3000 },
  );
});

test('property: flat maps (ASCII keys; flat items or flat arrays of them) are written as cborg writes them, and anything else is left to it', (t) => {
  const flatItem = fc.oneof(
    fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    fc.constantFrom(0, -1, 23, 24, 255, 256, 65536, 2 ** 32, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER),
    fc.string({ unit: 'binary-ascii', maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.constantFrom(null, true, false),
    cidArb,
    cidArb.map((cid) => new LinkBytes(cid.bytes)),
  );
  const notFlat = fc.constantFrom(-0, 0.5, 2 ** 53, 'é', [[1]], { a: 1 }, undefined);
  const key = fc.oneof(fc.string({ unit: 'binary-ascii', maxLength: 30 }), fc.constantFrom('a', 'b', 'aa', 'sig', 'type', 'parents'));
  fc.assert(
    fc.property(fc.dictionary(key, fc.oneof(flatItem, fc.array(flatItem, { maxLength: 20 })), { maxKeys: 30 }), fc.option(fc.tuple(key, notFlat)), (record, odd) => {
      if (odd) (record as Record<string, unknown>)[odd[0]] = odd[1];
      const byCodec = (() => {
        try {
          return hex(encode(record));
        } catch {
          return 'refused';
        }
      })();
      const flat = encodeFlatMap(record);
      if (flat) t.is(hex(flat), byCodec);
      else t.true(odd !== null || Object.keys(record).some((k) => /[^\x00-\x7f]/.test(k)), 'a flat record is written flat');
    }),
    { numRuns: 3000 },
  );
  t.is(encodeFlatMap({ 'é': 1 }), undefined);
  t.is(encodeFlatMap(new (class Thing { a = 1 })()), undefined);
  t.is(hex(encodeFlatMap(Object.create(null, { b: { value: 1, enumerable: true }, a: { value: [2], enumerable: true } }))!), hex(encode({ a: [2], b: 1 })));
});

test('property: flat values are read (or refused) as the codec reads them', (t) => {
  const flatItem = fc.oneof(
    fc.integer({ min: -(2 ** 33), max: 2 ** 33 }),
    fc.string({ unit: 'binary-ascii', maxLength: 40 }),
    fc.uint8Array({ maxLength: 40 }),
    fc.constantFrom(null, true, false, 1.5),
    cidArb,
  );
  /** The codec's reading of `bytes` as the value of a one-key map (not flat, so not read directly). */
  const byCodec = (bytes: Uint8Array) => {
    try {
      return { value: normalise((decode(new Uint8Array([0xa1, 0x60, ...bytes])) as Record<string, unknown>)['']) };
    } catch (error) {
      return { code: (error as WireError).code };
    }
  };
  const direct = (bytes: Uint8Array) => {
    try {
      return { value: normalise(decode(bytes)) };
    } catch (error) {
      return { code: (error as WireError).code };
    }
  };
  fc.assert(
    fc.property(fc.oneof(flatItem, fc.array(flatItem, { maxLength: 25 })), fc.nat(), fc.integer({ min: 1, max: 255 }), (value, position, flip) => {
      const bytes = encode(value);
      t.deepEqual(direct(bytes), byCodec(bytes));
      const mutated = bytes.slice();
      mutated[position % bytes.length]! ^= flip;
      t.deepEqual(direct(mutated), byCodec(mutated));
      t.deepEqual(direct(bytes.subarray(0, bytes.length - 1)), byCodec(bytes.subarray(0, bytes.length - 1)));
    }),
    { numRuns: 5000 },
  );
  t.is(t.throws(() => decode(encode([1, 2, 3]), { maxItems: 3 }), { instanceOf: WireError })?.code, 'ERR_TOO_MANY_ITEMS');
  t.is(t.throws(() => decode(encode([token]), { maxDepth: 1 }), { instanceOf: WireError })?.code, 'ERR_TOO_DEEP');
  t.deepEqual(decode(encode([1, 2, 3]), { maxItems: 4 }), [1, 2, 3]);
});

test('decodeKnowing gives a known link as the CID held, a link to anything else as decode does, and refuses what decode refuses', (t) => {
  const held = blockCid(new TextEncoder().encode('held'), 0x71);
  const other = blockCid(new TextEncoder().encode('other'), 0x71);
  const known = new Map([[linkKey(held), held]]);
  const bytes = encode({ a: held, b: [other, held] });
  const value = decodeKnowing(bytes, known) as { a: CID; b: CID[] };
  t.is(value.a, held, 'the very CID held');
  t.is(value.b[1], held);
  t.true(value.b[0]!.equals(other));
  t.deepEqual(value, decode(bytes));
  // A held CID under another's key is not taken for it: the bytes decide.
  const decoy = new Map([[linkKey(other), held]]);
  t.true((decodeKnowing(encode({ a: other }), decoy) as { a: CID }).a.equals(other));
  t.throws(() => decodeKnowing(Uint8Array.of(0xa1, 0x61, 0x61), known), { instanceOf: WireError });
  // Outside decodeKnowing nothing is known: decode makes its own.
  t.not((decode(encode({ a: CID.parse(held.toString()) })) as { a: CID }).a, held);
});
