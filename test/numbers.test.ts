/**
 * Numbers from the command line to a closure and back, exactly: JSON text
 * in the CLI, CBOR on the wire to a running node, an i64 or i32 parameter
 * in a WebAssembly vat (or a bigint in a JS one), JSON text out.
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const { grid, ok, startNode } = gridProcesses();

test('integers beyond 2^53 travel exactly through `grid call` and a node; what does not fit a parameter is refused, naming it', async (t) => {
  t.timeout(300_000); // a dozen processes, on a machine shared with other test runs
  const home = await tempDir(t);
  await ok(home, ['init']);
  const js = join(home, 'numbers.js');
  await writeFile(js, 'export const echo = (ctx, x) => x;\nexport const next = (ctx) => ctx.env.n + 1n;\n');
  const gcd = await ok(home, ['issue', 'examples/wasm/gcd.wasm', '--export', 'gcd']);
  const fib = await ok(home, ['issue', 'examples/wasm/fib.wasm', '--export', 'fib']);
  const echo = await ok(home, ['issue', js, '--export', 'echo']);
  const next = await ok(home, ['issue', js, '--export', 'next', '--env', '{"n": 9007199254740993}']);
  await startNode(t, home);

  // Was -9223372036854775808 (the argument reached the vat as 2^63, then wrapped).
  t.is(await ok(home, ['call', gcd, '9223372036854775807', '9223372036854775807']), '9223372036854775807');
  t.is(await ok(home, ['--json', 'call', gcd, '9007199254740993', '0']), '{"status":"fulfilled","value":9007199254740993}');
  t.is(await ok(home, ['call', gcd, '-6', '4']), '2');
  t.is(await ok(home, ['call', next]), '9007199254740994', '--env carries it exactly too');
  t.is(await ok(home, ['call', echo, '[-0, 18446744073709551615, -18446744073709551616]']), '[-0,18446744073709551615,-18446744073709551616]');

  const refused: Array<[string[], string]> = [
    [[gcd, '18446744073709551615', '0'], 'revoked: argument 1 of gcd is an i64: a whole number from -9223372036854775808 to 9223372036854775807 (got 18446744073709551615)'], // was 0
    [[fib, '4294967297'], 'revoked: argument 1 of fib is an i32: a whole number from -2147483648 to 2147483647 (got 4294967297)'], // was 1
    [[fib, '2.9'], 'revoked: argument 1 of fib is an i32: a whole number from -2147483648 to 2147483647 (got 2.9)'], // was 1
  ];
  for (const [args, line] of refused) {
    const result = await grid(home, ['call', ...args]);
    t.is(result.code, 3, line);
    t.is(result.stderr, line);
  }
  const tooBig = await grid(home, ['call', echo, '18446744073709551616']);
  t.is(tooBig.code, 1);
  t.is(tooBig.stderr, "grid: argument 1: the integer 18446744073709551616 is beyond the grid's integers (-2^64 to 2^64-1)");
  const infinite = await grid(home, ['call', echo, '1e400']);
  t.is(infinite.code, 1);
  t.is(infinite.stderr, 'grid: argument 1: 1e400 is beyond a 64-bit float');
});
