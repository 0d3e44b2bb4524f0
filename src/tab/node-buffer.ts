/** `isUtf8` of node:buffer, for the vat channel's code in a tab (it reads frames only on the shared-memory transport, which a tab does not use). */
const strict = new TextDecoder('utf-8', { fatal: true });

export const isUtf8 = (bytes: Uint8Array): boolean => {
  try {
    strict.decode(bytes);
    return true;
  } catch {
    return false;
  }
};
