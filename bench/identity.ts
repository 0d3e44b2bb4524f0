/**
 * Ed25519 through node:crypto (what the kernel uses) against @noble/ed25519
 * (the portable path). Ratios read "how many times slower than node:crypto".
 */
import { createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { identityFromSecret, verify, verifyPortable } from '../dist/identity/index.js';
import { medianBatched, medianOf, row, type Row } from './measure.js';

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export const benchIdentity = async (): Promise<Row[]> => {
  const secret = new Uint8Array(randomBytes(32));
  const identity = identityFromSecret(secret);
  const publicKey = identity.publicKey;
  const message = new Uint8Array(randomBytes(64));
  const signature = await identity.sign(message);
  const keyObject = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
  if (!verify(identity.principal, message, signature) || !verifyPortable(identity.principal, message, signature)) {
    throw new Error('bench/identity: the signature under test does not verify');
  }

  const sign = { name: 'sign (node:crypto)', median_ns: medianBatched(() => identity.sign(message), 100, 100) };
  const rawVerify = {
    name: 'crypto.verify (bare node:crypto)',
    median_ns: medianBatched(() => cryptoVerify(null, message, keyObject, signature), 100, 100),
  };
  const ourVerify = {
    name: 'verify (node:crypto + policy + key cache)',
    median_ns: medianBatched(() => verify(identity.principal, message, signature), 100, 100),
  };
  const nobleSign = await medianOf(() => ed.signAsync(message, secret), 300, 30);
  const portable = medianBatched(() => verifyPortable(identity.principal, message, signature), 5, 60);
  const nobleVerify = await medianOf(() => ed.verifyAsync(signature, message, publicKey, { zip215: false }), 300, 30);
  return [
    row(sign.name, sign.median_ns),
    row('@noble/ed25519 signAsync', nobleSign, sign),
    row(rawVerify.name, rawVerify.median_ns),
    row(ourVerify.name, ourVerify.median_ns, rawVerify),
    row('verifyPortable (noble points, cofactorless)', portable, ourVerify),
    row('@noble/ed25519 verifyAsync (zip215: false)', nobleVerify, ourVerify),
  ];
};
