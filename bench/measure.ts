/** Small timing helpers shared by the benchmarks: medians of single operations. */
export interface Row {
  name: string;
  median_ns: number;
  ops_per_s: number;
  baseline?: string;
  ratio?: number;
}

const now = () => process.hrtime.bigint();

/** Median time of one synchronous or asynchronous operation, over `samples` runs after a warm-up. */
export const medianOf = async (op: (i: number) => unknown, samples = 20_000, warmup = 2_000): Promise<number> => {
  for (let i = 0; i < warmup; i++) await op(i);
  const times = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const start = now();
    await op(warmup + i);
    times[i] = Number(now() - start);
  }
  times.sort();
  return times[samples >> 1]!;
};

/** Median of a synchronous op timed in batches (for ops too fast to time one by one). */
export const medianBatched = (op: (i: number) => unknown, batch = 1_000, batches = 200): number => {
  for (let i = 0; i < batch * 10; i++) op(i);
  const times = new Float64Array(batches);
  for (let b = 0; b < batches; b++) {
    const start = now();
    for (let i = 0; i < batch; i++) op(i);
    times[b] = Number(now() - start) / batch;
  }
  times.sort();
  return times[batches >> 1]!;
};

/** Operations per second with `inFlight` operations outstanding at once. */
export const throughput = async (op: (i: number) => Promise<unknown>, total = 100_000, inFlight = 256): Promise<number> => {
  let next = 0;
  const worker = async () => {
    while (next < total) await op(next++);
  };
  const start = now();
  await Promise.all(Array.from({ length: inFlight }, worker));
  return total / (Number(now() - start) / 1e9);
};

export const row = (name: string, median_ns: number, baseline?: { name: string; median_ns: number }): Row => ({
  name,
  median_ns: Math.round(median_ns),
  ops_per_s: Math.round(1e9 / median_ns),
  ...(baseline ? { baseline: baseline.name, ratio: Number((median_ns / baseline.median_ns).toFixed(2)) } : {}),
});

/**
 * Medians of several operations measured in turns — `rounds` rounds of
 * `perRound` runs each — so that a ratio between them is not skewed by the
 * machine being busier while one of them ran.
 */
export const mediansInTurns = async (
  ops: Readonly<Record<string, (i: number) => unknown>>,
  { rounds = 10, perRound = 500, warmup = 1_000 } = {},
): Promise<Record<string, number>> => {
  const names = Object.keys(ops);
  const times = new Map(names.map((name) => [name, new Float64Array(rounds * perRound)]));
  let i = 0;
  for (const name of names) for (let w = 0; w < warmup; w++) await ops[name]!(i++);
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const op = ops[name]!;
      const into = times.get(name)!;
      for (let k = 0; k < perRound; k++) {
        const start = now();
        await op(i++);
        into[round * perRound + k] = Number(now() - start);
      }
    }
  }
  return Object.fromEntries(names.map((name) => [name, times.get(name)!.sort()[(rounds * perRound) >> 1]!]));
};
