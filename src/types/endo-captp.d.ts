// @endo/captp ships JavaScript without declarations; this is the part we use.
declare module '@endo/captp' {
  export interface CapTP {
    dispatch(message: Record<string, unknown>): boolean;
    getBootstrap(): Promise<unknown>;
    abort(reason?: unknown): void;
  }
  export function makeCapTP(
    ourId: string,
    rawSend: (message: Record<string, unknown>) => void,
    bootstrap?: unknown,
    options?: { onReject?: (error: unknown) => void; epoch?: number; gcImports?: boolean },
  ): CapTP;
}
