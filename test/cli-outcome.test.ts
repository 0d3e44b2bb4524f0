/**
 * The CLI's exit code for a revoked call is chosen by the outcome's code
 * (DESIGN: 3 revoked, 4 unreachable), never by its reason's wording.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { EXIT, printOutcome, UNREACHABLE_CODES, type Invocation } from '../src/cli/invocation.js';
import { revoked, REVOKE_CODES } from '../src/interface/outcome.js';

const invocation = (json: boolean) => {
  const out: string[] = [];
  const err: string[] = [];
  const inv: Invocation = { home: '/nonexistent', lockWaitMs: undefined, json, debug: false, env: {}, io: { out: (s) => out.push(s), err: (s) => err.push(s), stdin: async () => new Uint8Array() } };
  return { inv, out, err };
};

test('a revoked call exits 4 when its code says no answer came, else 3, whatever its reason says', (t) => {
  t.deepEqual([...UNREACHABLE_CODES].sort(), ['disconnected', 'time-limit', 'unreachable']);
  for (const code of REVOKE_CODES) {
    const unreachable = UNREACHABLE_CODES.has(code);
    // A reason that says the opposite of the code: only the code counts.
    const { inv, err } = invocation(false);
    t.is(printOutcome(inv, revoked(code, unreachable ? 'boom' : 'time limit')), unreachable ? EXIT.unreachable : EXIT.revoked, code);
    t.deepEqual(err, [`revoked: ${unreachable ? 'boom' : 'time limit'}`], 'people read the reason');
  }
});

test('--json prints the outcome with its code', (t) => {
  const { inv, out } = invocation(true);
  t.is(printOutcome(inv, revoked('time-limit', 'time limit')), EXIT.unreachable);
  t.deepEqual(JSON.parse(out[0]!), { status: 'revoked', code: 'time-limit', reason: 'time limit' });
});
