/**
 * What every verb shares: the invocation (home, output mode, io), exit
 * codes as README.md lists them (the CLI tour), printing an outcome, and defining a verb
 * on commander with the global options (`--home`, `--json`, `--debug`),
 * which are taken before or after the verb.
 */
import { Command, Option } from 'commander';
import { quote } from '../interface/ids.js';
import { defaultHome } from '../home/home.js';
import type { Outcome } from '../kernel/kernel.js';
import type { RevokeCode } from '../interface/outcome.js';
import { isPeerUrl } from '../net/membership.js';
import { toJsonText, UsageError } from './format.js';
import { NO_PROGRESS, type Progress } from './progress.js';

/** `interrupted`: Ctrl-C cancelled the operation (128 + SIGINT, as shells report it). */
export const EXIT = { ok: 0, usage: 1, revoked: 3, unreachable: 4, interrupted: 130 } as const;

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  stdin: () => Promise<Uint8Array>;
  /** Where long operations show progress (stderr on a terminal); none if absent. */
  progress?: Progress;
  /**
   * Run `handler` when the user interrupts (Ctrl-C) while an operation that
   * can be cancelled runs; returns the function that stops listening. Only
   * such operations listen: elsewhere Ctrl-C stops the process as usual.
   */
  onInterrupt?: (handler: () => void) => () => void;
}

export interface Invocation {
  readonly home: string;
  /** How long to wait for another process to release the home. */
  readonly lockWaitMs: number | undefined;
  readonly json: boolean;
  readonly debug: boolean;
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
}

/** One run of `main`: its io and environment, and the exit code its verb settled on. */
export interface Session {
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
  code: number;
}

/** Progress for this invocation: none when the output is JSON for a script. */
export const progressOf = (inv: Invocation): Progress => (inv.json ? NO_PROGRESS : inv.io.progress ?? NO_PROGRESS);

/** No answer came: exit 4. */
export class UnreachableError extends Error {
  readonly code = 'ERR_UNREACHABLE';
}

/** Revocation codes that mean "no answer came", not "the promise was broken". */
export const UNREACHABLE_CODES: ReadonlySet<RevokeCode> = new Set(['time-limit', 'unreachable', 'disconnected']);

export const printOutcome = (inv: Invocation, outcome: Outcome): number => {
  if (inv.json) inv.io.out(toJsonText(outcome));
  else if (outcome.status === 'fulfilled') inv.io.out(toJsonText(outcome.value));
  else if (outcome.status === 'promised') inv.io.out(`promised: ${outcome.token}`);
  else inv.io.err(`revoked: ${outcome.reason}`);
  if (outcome.status === 'revoked') return UNREACHABLE_CODES.has(outcome.code) ? EXIT.unreachable : EXIT.revoked;
  return EXIT.ok;
};

const GLOBAL_HEADING = 'Global options (before or after the verb):';

/** The global options, on the program and on every verb (so they may come after the verb's arguments). */
export const withGlobalOptions = (command: Command): Command =>
  command
    .addOption(new Option('--home <dir>', 'the home (default: $GRID_HOME, else ~/.promisegrid)').helpGroup(GLOBAL_HEADING))
    .addOption(new Option('--json', 'print one JSON object, for scripts').helpGroup(GLOBAL_HEADING))
    .addOption(new Option('--debug', 'add the stack to an error; grid start: log at debug, stacks included').helpGroup(GLOBAL_HEADING));

/** Options a verb reads, as commander parsed them. */
export type Opts = Readonly<Record<string, unknown>>;

/** An option's text, if given. */
export const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** A repeatable option's values (see `repeatable`). */
export const list = (value: unknown): string[] => (Array.isArray(value) ? (value as string[]) : []);

/** Argument parser for `--via`: a node's ws:// or wss:// URL, refused in one line before anything is done. */
export const viaUrl = (value: string): string => {
  if (!isPeerUrl(value)) throw new UsageError(`--via takes a node's ws:// or wss:// URL (got ${quote(value)})`);
  return value;
};

/** Argument parser for an option that may be given more than once. */
export const repeatable = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/**
 * A verb: a commander command with the global options, whose action runs
 * `body` with the invocation, the verb's arguments (as declared, a variadic
 * one as an array) and its own options, and records the exit code it returns.
 */
export const verb = (
  session: Session,
  name: string,
  summary: string,
  define: (command: Command) => Command,
  body: (inv: Invocation, args: readonly unknown[], opts: Opts) => Promise<number>,
): Command => {
  const command = withGlobalOptions(define(new Command(name).description(summary)));
  return command.action(async (...params: unknown[]) => {
    const self = params.at(-1) as Command;
    const globals = self.optsWithGlobals<{ home?: string; json?: boolean; debug?: boolean }>();
    const lockWait = session.env.GRID_LOCK_WAIT_MS;
    const inv: Invocation = {
      home: globals.home ?? defaultHome(session.env),
      lockWaitMs: lockWait ? Number(lockWait) : undefined,
      json: globals.json === true,
      debug: globals.debug === true,
      io: session.io,
      env: session.env,
    };
    session.code = await body(inv, self.processedArgs, self.opts());
  });
};
