/**
 * The node's log, as `grid start` writes it: ordinary refusals (an expired
 * invitation, revoking a token the node does not know) are one structured
 * line each on stderr, without stack frames, and nothing on stdout but where
 * the node listens; `--debug` puts the stack in the line.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';
import { wat } from './_wat.js';
import { eventually, gridProcesses } from './_processes.js';

const { grid, ok, startNode } = gridProcesses();

const STACK_FRAME = /\bat [^\s]+ \(|\n\s+at /;
// A WebAssembly closure that logs a line with a newline and a forged record in it, then echoes its argument.
const SAY = `(module
  (import "grid" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 16) "hi\\0a{\\"level\\":60}")
  (func (export "alloc") (param $len i32) (result i32)
    (local $at i32)
    (local.set $at (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $len)))
    (local.get $at))
  (func (export "say") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 16) (i32.const 15))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len)))))`;

const lines = (text: string) => text.split('\n').filter((line) => line.trim() !== '');

/** Let an invitation expire, then try to join with it. */
const expiredJoin = async (introducer: string, joiner: string) => {
  const invitation = await ok(introducer, ['invite', '--expires', '1ms']);
  await sleep(50);
  const joined = await grid(joiner, ['join', invitation]);
  return joined;
};

test('an expired invitation and an unknown token leave one log line each, no stack; stdout has only where the node listens', async (t) => {
  t.timeout(90_000);
  const [a, b] = await Promise.all([tempDir(t), tempDir(t)]);
  const [pa, pb] = await Promise.all([ok(a, ['init']), ok(b, ['init'])]);
  const sayFile = join(a, 'say.wasm');
  await writeFile(sayFile, await wat(SAY));
  const say = await ok(a, ['issue', sayFile, '--export', 'say']);
  const node = await startNode(t, a);

  const joined = await expiredJoin(a, b);
  t.is(joined.code, 1);
  t.regex(joined.stderr, /^grid: join refused: invitation expired at [^\n]+$/, 'the joiner gets one line too');
  const unknown = 'bafyreihg3iqapjlopjhkwmanltwkxln3xanhwel5tnyznoma4bhbxpldju';
  const revoked = await grid(a, ['revoke', unknown]);
  t.not(revoked.code, 0);
  t.is(await ok(b, ['call', say, '7', '--via', node.url]), '[7]', 'say echoes its arguments');

  const log = await eventually(async () => node.stderr(), (text) => /"method":"revoke"/.test(text), 10_000);
  const logged = lines(log).map((line) => JSON.parse(line) as Record<string, unknown>);
  t.true(logged.every((entry) => typeof entry.level === 'number' && typeof entry.msg === 'string' && typeof entry.time === 'string'), 'every line is a structured record');
  const invitation = lines(log).filter((line) => /invitation/i.test(line));
  t.is(invitation.length, 1, `one line for the expired invitation: ${invitation.join('\n')}`);
  const refusal = JSON.parse(invitation[0]!);
  t.like(refusal, { event: 'refused', method: 'redeem', peer: pb, err: { code: 'ERR_INVITATION' } });
  t.regex(refusal.msg, /^redeem refused: invitation expired at /);
  const revoke = lines(log).filter((line) => /"method":"revoke"/.test(line));
  t.is(revoke.length, 1);
  t.like(JSON.parse(revoke[0]!), { event: 'refused', peer: pa, err: { code: 'ERR_UNKNOWN_TOKEN' } });
  const said = logged.filter((entry) => entry.event === 'closure-log');
  t.deepEqual(said.map((entry) => [entry.token, entry.msg]), [[say, 'hi\n{"level":60}']], "a closure's log line is one record, its text escaped: it cannot forge a line");
  t.false(logged.some((entry) => entry.level === 60), 'no forged record');
  t.false(STACK_FRAME.test(log), `no stack frames in the log:\n${log}`);
  t.false(/Temporary logging of sent error/.test(log + node.stdout()), 'CapTP logs no sent error');
  t.deepEqual(lines(node.stdout()).length, 1, `stdout has only the --json line: ${node.stdout()}`);
  t.is(await node.stop(), 0);
});

test('with --debug the line carries the stack; GRID_LOG_LEVEL names a level or is refused', async (t) => {
  t.timeout(90_000);
  const [a, b] = await Promise.all([tempDir(t), tempDir(t)]);
  await Promise.all([ok(a, ['init']), ok(b, ['init'])]);
  const node = await startNode(t, a, ['--debug']);
  t.is((await expiredJoin(a, b)).code, 1);
  const log = await eventually(async () => node.stderr(), (text) => /invitation expired/.test(text), 10_000);
  const invitation = lines(log).filter((line) => /invitation expired/.test(line));
  t.is(invitation.length, 1, 'still one line');
  const { err } = JSON.parse(invitation[0]!) as { err: { stack?: string } };
  t.regex(err.stack ?? '', /\bat /, 'with the stack in it');
  t.is(await node.stop(), 0);

  const quiet = await gridProcesses({ GRID_LOG_LEVEL: 'warn' }).startNode(t, a);
  t.is((await expiredJoin(a, b)).code, 1);
  await sleep(300);
  t.is(quiet.stderr(), '', 'at warn, a refusal (info) is not logged');
  t.is(await quiet.stop(), 0);
  const wrong = await gridProcesses({ GRID_LOG_LEVEL: 'loud' }).grid(a, ['start'], 20_000);
  t.is(wrong.code, 1, wrong.stderr);
  t.regex(wrong.stderr, /^grid: GRID_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent \(got "loud"\)$/);
});
