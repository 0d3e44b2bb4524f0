/**
 * Revocation notices: what travels from a token's node to the nodes that
 * cached its answers, so a revocation holds there too. A notice is signed by
 * the token's issuer — whoever relays it cannot change what it says — and
 * the signature covers the token and the reason behind a domain prefix, so it
 * can never be replayed as any other signed grid statement. Ed25519 is
 * deterministic: re-signing a revocation gives the same notice, so a node
 * need not store its own.
 */
import type { Token } from '../interface/ids.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import { encode } from '../wire/index.js';

import type { RevocationNotice } from '../wire/shapes.js';

export type { RevocationNotice };

const DOMAIN = new TextEncoder().encode('promisegrid:revocation:v1\n');

const statement = (token: Token, reason: string): Uint8Array => concatBytes(DOMAIN, encode([token, reason]));

export const signRevocation = async (token: Token, reason: string, issuer: Identity): Promise<RevocationNotice> =>
  Object.freeze({ token, reason, by: issuer.principal, signature: await issuer.sign(statement(token, reason)) });

/** Yes or no: does `by` vouch for this notice? Never throws on hostile input. */
export const isSignedRevocation = (notice: RevocationNotice): boolean => {
  try {
    return verify(notice.by, statement(notice.token, notice.reason), notice.signature);
  } catch {
    return false;
  }
};
