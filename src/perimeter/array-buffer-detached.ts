/**
 * `ArrayBuffer.prototype.detached` for runtimes without it (Node 20, V8
 * 11.3), installed before lockdown. SES's immutable-ArrayBuffer shim defines
 * `detached` on every platform and, where the engine has none, answers
 * `false` even for a buffer that *is* detached. wasm-bindgen glue (Automerge's
 * included) trusts that answer to notice that WebAssembly memory grew and its
 * cached DataView is stale: under lockdown on Node 20 the first merge that
 * grows the memory failed with "Cannot perform DataView.prototype.setInt32 on
 * a detached ArrayBuffer". The shim reads the engine's getter when it loads,
 * so a correct getter installed here is the one it defers to. A detached
 * buffer is the one whose length reads 0 and that no view can be made on.
 */
const proto = ArrayBuffer.prototype;
if (Object.getOwnPropertyDescriptor(proto, 'detached') === undefined) {
  const byteLength = Object.getOwnPropertyDescriptor(proto, 'byteLength')!.get!;
  Object.defineProperty(proto, 'detached', {
    configurable: true,
    enumerable: false,
    get(this: ArrayBuffer): boolean {
      if (Reflect.apply(byteLength, this, []) !== 0) return false;
      try {
        new Uint8Array(this);
        return false;
      } catch {
        return true;
      }
    },
  });
}
export {};
