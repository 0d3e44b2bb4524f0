/**
 * The one shape of every refusal in the tree: a one-line message that starts
 * with its layer's prefix, and a stable `code` for programs to branch on.
 */
export class GridError<Code extends string = string> extends Error {
  readonly code: Code;
  constructor(code: Code, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Describe whatever hostile code threw, without trusting it: getters may throw, `toString` may lie. */
export const describeThrown = (thrown: unknown): string => {
  try {
    if (typeof thrown === 'object' && thrown !== null) {
      const message = (thrown as { message?: unknown }).message;
      if (typeof message === 'string') return message;
    }
    return String(thrown);
  } catch {
    return 'unprintable error';
  }
};
