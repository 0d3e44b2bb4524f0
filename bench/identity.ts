/** Ed25519 through node:crypto (what the kernel uses) against @noble/ed25519 (the portable path). */
import { randomBytes } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { generateIdentity, verify, verifyPortable } from '../dist/identity/index.js';
import { medianBatched, medianOf, row, type Row } from './measure.js';

export const benchIdentity = async (): Promise<Row[]> => {
  const identity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const message = new Uint8Array(randomBytes(64));
  const signature = identity.sign(message);
  const secret = new Uint8Array(randomBytes(32));
  const nobleSign = { name: '@noble/ed25519 signAsync', median_ns: await medianOf(() => ed.signAsync(message, secret), 500, 50) };
  const nobleVerify = { name: '@noble/ed25519 verifyAsync', median_ns: await medianOf(() => verifyPortable(identity.principal, message, signature), 500, 50) };
  return [
    row(nobleSign.name, nobleSign.median_ns),
    row('node:crypto sign', medianBatched(() => identity.sign(message), 100, 50), nobleSign),
    row(nobleVerify.name, nobleVerify.median_ns),
    row('node:crypto verify', medianBatched(() => verify(identity.principal, message, signature), 100, 50), nobleVerify),
  ];
};
