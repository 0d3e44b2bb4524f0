/**
 * Progress for long CLI operations, on stderr so stdout stays the answer.
 * On a terminal each update redraws one status line, erased when the
 * operation ends; elsewhere nothing is shown, unless GRID_PROGRESS=lines
 * asks for one line per update (for logs, and for tests that read them).
 */

/** Report a step; `undefined` ends the operation (erasing its line). */
export type Progress = (status: string | undefined) => void;

export const NO_PROGRESS: Progress = () => {};

interface StatusStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** Redraw at most this often on a terminal; a burst of steps shows its latest. */
const REDRAW_MS = 80;

export const progressOn = (stream: StatusStream, env: NodeJS.ProcessEnv, now: () => number = Date.now): Progress => {
  if (env.GRID_PROGRESS === 'lines') return (status) => void (status !== undefined && stream.write(`… ${status}\n`));
  if (!stream.isTTY || env.GRID_PROGRESS === 'off') return NO_PROGRESS;
  let shown = false;
  let last = Number.NEGATIVE_INFINITY;
  return (status) => {
    if (status === undefined) {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
      return;
    }
    if (now() - last < REDRAW_MS) return;
    last = now();
    shown = true;
    stream.write(`\r\x1b[K${status.slice(0, 200)}`);
  };
};

/** A byte count people read at a glance. */
export const formatBytes = (n: number): string =>
  n < 1000 ? `${n} B` : n < 1e6 ? `${(n / 1e3).toFixed(1)} kB` : `${(n / 1e6).toFixed(1)} MB`;

/** Run `work`, saying `status` with the time waited every `everyMs` once it has taken that long. */
export const whileWaiting = async <T>(progress: Progress, status: string, work: Promise<T>, everyMs = 500): Promise<T> => {
  const began = Date.now();
  const timer = setInterval(() => progress(`${status} (${((Date.now() - began) / 1000).toFixed(1)} s)`), everyMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
    progress(undefined);
  }
};
