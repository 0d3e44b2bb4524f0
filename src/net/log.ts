/**
 * The node's log: one structured line per event (pino's JSON on stderr), at
 * a level — `info` unless `GRID_LOG_LEVEL` or `grid start --debug` says
 * otherwise. A refusal is an ordinary event: one line with its `code` and
 * message, never a stack; stacks are for `debug` and below, where a thrown
 * error's frames are part of its line.
 *
 * stdout is not the log's: `grid start` prints where the node listens there,
 * and programs read it.
 */
import pino, { type Logger as Pino } from 'pino';
import { describeThrown } from '../interface/errors.js';

export const LOG_LEVELS = Object.freeze(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const);
export type LogLevel = (typeof LOG_LEVELS)[number];
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

type LogFn = (fields: Record<string, unknown>, message: string) => void;

/** What the node's parts log through: pino's shape, so a pino logger is one. */
export interface Log {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  isLevelEnabled(level: LogLevel): boolean;
  child(fields: Record<string, unknown>): Log;
}

const noop: LogFn = () => {};
/** A log that says nothing, for nodes made without one (tests, the library API). */
export const silentLog: Log = Object.freeze({
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  isLevelEnabled: () => false,
  child: () => silentLog,
});

export const isLogLevel = (text: unknown): text is LogLevel => typeof text === 'string' && (LOG_LEVELS as readonly string[]).includes(text);

/** `GRID_LOG_LEVEL` if set (refused if it names no level), else `info`; `debug: true` (`--debug`) lowers it to debug. */
export const logLevelFrom = (env: NodeJS.ProcessEnv, debug = false): LogLevel => {
  const named = env.GRID_LOG_LEVEL;
  if (named !== undefined && named !== '' && !isLogLevel(named)) {
    throw new RangeError(`GRID_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(named)})`);
  }
  const level: LogLevel = named ? (named as LogLevel) : DEFAULT_LOG_LEVEL;
  if (!debug) return level;
  return LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf('debug') ? level : 'debug';
};

/** Under SES the stack is not an error's own property; the start compartment keeps a getter for it. */
const stackOf = (error: unknown): string | undefined => {
  const getStackString = (globalThis as { getStackString?: (error: Error) => string }).getStackString;
  try {
    if (!(error instanceof Error)) return undefined;
    return (getStackString ? getStackString(error) : error.stack) || undefined;
  } catch {
    return undefined;
  }
};

const codeOf = (thrown: unknown): string | undefined => {
  try {
    const code = typeof thrown === 'object' && thrown !== null ? (thrown as { code?: unknown }).code : undefined;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
};

/**
 * A pino logger writing lines to `fd` (stderr by default), synchronously, so
 * the last lines before an exit are not lost. Errors are logged under `err`
 * as name, code and message, with the stack only at debug and below.
 */
export const makeLog = (options: { level?: LogLevel; fd?: number } = {}): Log => {
  const level = options.level ?? DEFAULT_LOG_LEVEL;
  const withStacks = LOG_LEVELS.indexOf(level) <= LOG_LEVELS.indexOf('debug');
  const logger: Pino = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: {
        err: (thrown: unknown) => {
          const code = codeOf(thrown);
          const stack = withStacks ? stackOf(thrown) : undefined;
          const name = thrown instanceof Error ? thrown.name : typeof thrown;
          return { name, ...(code ? { code } : {}), message: describeThrown(thrown), ...(stack ? { stack } : {}) };
        },
      },
    },
    pino.destination({ fd: options.fd ?? 2, sync: true }),
  );
  return logger as unknown as Log;
};
