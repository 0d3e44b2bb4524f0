/**
 * What nodes hand each other, as values: an answer to a call, a replicable
 * closure's blocks, a delegation chain's blocks. The kernel makes and takes
 * them; net/frames.ts carries them in grid messages. They live below both,
 * so the kernel needs nothing of the network to speak of them.
 */
import type { Outcome } from '../interface/outcome.js';
import type { Principal, Token } from '../interface/ids.js';

/** A signed revocation, as it travels to the nodes that must hear of it (kernel/revocations.ts signs and checks them). */
export interface RevocationNotice {
  readonly token: Token;
  readonly reason: string;
  /** The issuer who revoked it. */
  readonly by: Principal;
  readonly signature: Uint8Array;
}

/** An outcome as a node gives it to a peer: may whoever receives it cache it, or fetch the closure itself? */
export interface Answer {
  readonly outcome: Outcome;
  readonly cacheable: boolean;
  /** The closure is replicable: the receiver may fetch it and answer it on its own. */
  readonly replicable?: boolean;
  /** The fulfilled value's canonical bytes, when the kernel holds them already: a reply need not encode it again. */
  readonly valueBytes?: Uint8Array;
}

/** A replicable closure's blocks: its record, and its modules with dependencies first. */
export interface Replica {
  readonly closure: Uint8Array;
  readonly modules: readonly Uint8Array[];
}

/**
 * What a call through a delegation brings, so that the node that answers it
 * needs nothing from the delegators: the chain's records (outermost first)
 * and the policy modules it uses that are not shipped with every node.
 */
export interface ChainBlocks {
  readonly links: readonly Uint8Array[];
  readonly modules: readonly Uint8Array[];
}
