/**
 * Grid data as JSON text, in the DAG-JSON conventions: bytes are
 * `{"/": {"bytes": "<base64>"}}`, a bigint is its digits (an exact JSON
 * number) and -0 is `-0` (JSON.stringify would print 0). The CLI's `--json`
 * and the web page print with it; the CLI reads arguments back (cli/format.ts).
 */
const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64').replace(/=+$/, '');

export const toJsonText = (value: unknown, indent?: number): string => {
  const placeholders: string[] = [];
  const text = JSON.stringify(
    value,
    function replacer(this: unknown, _key, v) {
      if (typeof v === 'bigint' || Object.is(v, -0)) {
        placeholders.push(Object.is(v, -0) ? '-0' : v.toString());
        return `\u0000big${placeholders.length - 1}\u0000`;
      }
      if (v instanceof Uint8Array) return { '/': { bytes: toBase64(v) } };
      return v;
    },
    indent,
  );
  return text.replace(/"\\u0000big(\d+)\\u0000"/g, (_m, index) => placeholders[Number(index)]!);
};
