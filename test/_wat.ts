import wabtInit from 'wabt';

let wabt: Awaited<ReturnType<typeof wabtInit>> | undefined;

/** WebAssembly bytes from WAT text, with the wabt npm package: no compiler on the machine. */
export const wat = async (text: string): Promise<Uint8Array> => {
  wabt ??= await wabtInit();
  const module = wabt.parseWat('test.wat', text);
  try {
    return new Uint8Array(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
};
