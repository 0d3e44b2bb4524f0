/**
 * How every call ends, in one shape for every layer: exactly one of
 * fulfilled (a value), revoked (a reason), or promised (a further token).
 * `V` is how the value is carried: decoded grid data in the kernel's API,
 * canonical bytes between threads.
 */
export type Settlement<V, T extends string = string> =
  | { readonly status: 'fulfilled'; readonly value: V }
  | { readonly status: 'revoked'; readonly reason: string }
  | { readonly status: 'promised'; readonly token: T };
