/**
 * Revocation is final across crashes: a revocation is on disk before it is
 * acknowledged. Each case runs in a process of its own that kills itself
 * (SIGKILL, no exit handlers) in the same turn the acknowledgement arrives:
 * a record still waiting for its batch to be written dies with it.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { openKernel } from '../src/index.js';
import { tempDir } from './_helpers.js';

const dist = new URL('../dist/', import.meta.url).href;

/** Run `body` (module code, with `kernel` open on `home` and `token` issued there) in a node that dies right after it. */
const dieAfter = (home: string, body: string) =>
  new Promise<{ signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve, reject) => {
    const script = `
      import '${dist}perimeter/lockdown.js';
      import { openKernel } from '${dist}index.js';
      import { loadIdentity } from '${dist}identity/index.js';
      import { signRevocation } from '${dist}kernel/revocations.js';
      const home = ${JSON.stringify(home)};
      const kernel = await openKernel({ home });
      const token = await kernel.issue({ code: await kernel.publish('export const f = () => 1'), export: 'f' });
      await kernel.flush();
      console.log(token);
      ${body}
      process.kill(process.pid, 'SIGKILL');
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (_code, signal) => resolve({ signal, stdout, stderr }));
  });

const newHome = async (t: import('ava').ExecutionContext) => {
  const home = join(await tempDir(t), 'home');
  await (await openKernel({ home, create: true })).close();
  return home;
};

test('a revocation the issuer was told of survives the process being killed at once', async (t) => {
  const home = await newHome(t);
  const run = await dieAfter(home, `await kernel.revoke(token, 'leaked');`);
  t.is(run.signal, 'SIGKILL', run.stderr);
  const token = run.stdout.trim();
  const kernel = await openKernel({ home });
  t.teardown(() => kernel.close());
  t.deepEqual(await kernel.call(token), { status: 'revoked', code: 'token-revoked', reason: 'leaked' });
});

test('a revocation heard from a peer and acknowledged survives the process being killed at once', async (t) => {
  const home = await newHome(t);
  // The notice is the issuer's own (this home's key), heard as if a peer relayed it.
  const run = await dieAfter(
    home,
    `const heard = await kernel.hearRevocation(await signRevocation(token, 'heard', await loadIdentity(home + '/identity')), kernel.principal);
     if (!heard) throw new Error('not believed');`,
  );
  t.is(run.signal, 'SIGKILL', run.stderr);
  const token = run.stdout.trim();
  const kernel = await openKernel({ home });
  t.teardown(() => kernel.close());
  t.deepEqual(await kernel.call(token), { status: 'revoked', code: 'token-revoked', reason: 'heard' });
});
