/** Grid URLs: a token, where to reach it, and a delegated token's chain, through text and back. */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { formatGridUrl, parseGridUrl } from '../src/net/grid-url.js';

const token = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku';

test('a grid URL carries a token, a node to ask, and a chain', (t) => {
  const chain = { links: [new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(7)], modules: [new TextEncoder().encode('export const screen = () => ({ forward: true });')] };
  const url = formatGridUrl({ token, via: 'ws://127.0.0.1:4000', chain });
  t.regex(url, new RegExp(`^grid://${token}\\?via=ws%3A%2F%2F127\\.0\\.0\\.1%3A4000&chain=[A-Za-z0-9_-]+$`));
  t.deepEqual(parseGridUrl(url), { token, via: 'ws://127.0.0.1:4000', chain });
  t.deepEqual(parseGridUrl(formatGridUrl({ token })), { token });
  t.is(formatGridUrl({ token }), `grid://${token}`);
});

test('a grid URL that is not one, or whose chain is not a chain, is refused in one line', (t) => {
  t.throws(() => parseGridUrl('https://example.com'), { message: /not a grid URL/ });
  t.throws(() => parseGridUrl('not a url'), { message: /not a grid URL/ });
  for (const chain of ['@@@', 'AAAA', 'gqA', 'x'.repeat(300_000)]) {
    t.throws(() => parseGridUrl(`grid://${token}?chain=${chain}`), { message: /the grid URL's chain is not a delegation chain/ });
  }
});
