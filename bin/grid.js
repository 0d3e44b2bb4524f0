#!/usr/bin/env node
import { main } from '../dist/cli/main.js';
import { progressOn } from '../dist/cli/progress.js';

// node:wasi announces itself as experimental on first use; that note is for
// Node's developers, not for people running `grid run`. Other warnings print.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'ExperimentalWarning' && /WASI/.test(warning.message)) return;
  process.stderr.write(`${warning.name}: ${warning.message}\n`);
});

const readStdin = async () => {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return new Uint8Array(Buffer.concat(chunks));
};

const progress = progressOn(process.stderr, process.env);

// While a cancellable operation runs (a call), Ctrl-C asks it to cancel; a
// second Ctrl-C stops waiting for that and exits at once, erasing the
// progress line. At any other time Ctrl-C stops the process as usual.
const onInterrupt = (handler) => {
  let interrupted = false;
  const listener = () => {
    if (interrupted) {
      progress(undefined);
      process.exit(130);
    }
    interrupted = true;
    handler();
  };
  process.on('SIGINT', listener);
  return () => process.off('SIGINT', listener);
};

process.exitCode = await main(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  stdin: readStdin,
  progress,
  onInterrupt,
});
