/**
 * The first three messages on every connection: mutual Ed25519
 * challenge–response, so each side knows the other's principal before
 * anything else is said.
 *
 *   server → client  hello  { principal, challenge }
 *   client → server  prove  { principal, challenge, signature over the server's challenge }
 *   server → client  proven { signature over the client's challenge }
 *
 * Each signature covers the challenge it answers and both principals, behind
 * a domain prefix, so it proves one thing only: "I am this principal, talking
 * to that one, on the connection that sent this challenge". Challenges are
 * fresh per connection, so a recorded `prove` is worthless on any other.
 */
import { asPrincipal, type Principal } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';
import { decodeMessage, encodeMessage } from '../wire/index.js';
import { protocolCid } from './frames.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';

export const HANDSHAKE_PROTOCOL = protocolCid('promisegrid/handshake/v1');
export const CAPTP_PROTOCOL = protocolCid('promisegrid/captp/v1');

/** Everything before authentication is this small. */
export const MAX_HANDSHAKE_FRAME = 1024;
/**
 * Bytes either side of a connection may send, once upgraded to a WebSocket,
 * before it has authenticated. An honest peer sends at most two frames of
 * MAX_HANDSHAKE_FRAME bytes, each behind a header of at most 14, before it
 * can have heard the other's last; past this the TCP connection is closed at
 * once. ws would otherwise buffer a frame up to its maxPayload before the
 * handshake sees it.
 */
export const MAX_PREAUTH_BYTES = 2 * MAX_HANDSHAKE_FRAME;
export const CHALLENGE_BYTES = 32;
const DOMAIN = new TextEncoder().encode('promisegrid:handshake:v1\n');

export class HandshakeError extends GridError {
  constructor(message: string) {
    super('ERR_HANDSHAKE', `handshake: ${message}`);
  }
}

const statement = (challenge: Uint8Array, prover: Principal, verifier: Principal): Uint8Array => {
  const names = new TextEncoder().encode(`${prover}\n${verifier}\n`);
  return concatBytes(DOMAIN, challenge, names);
};

/** Read one handshake message of the expected step, refusing anything else. */
const read = (bytes: Uint8Array, step: string): Record<string, unknown> => {
  if (bytes.length > MAX_HANDSHAKE_FRAME) throw new HandshakeError(`${step} message is ${bytes.length} bytes (limit ${MAX_HANDSHAKE_FRAME})`);
  let message: ReturnType<typeof decodeMessage>;
  try {
    message = decodeMessage(bytes, { maxBytes: MAX_HANDSHAKE_FRAME, maxDepth: 4, maxItems: 32 });
  } catch (error) {
    throw new HandshakeError(`malformed ${step} message (${(error as Error).message})`);
  }
  const [kind, body] = message.slots;
  if (!message.cid.equals(HANDSHAKE_PROTOCOL) || kind !== step || body === null || typeof body !== 'object') {
    throw new HandshakeError(`expected a ${step} message`);
  }
  return body as Record<string, unknown>;
};

const bytesField = (body: Record<string, unknown>, name: string, length: number): Uint8Array => {
  const value = body[name];
  if (!(value instanceof Uint8Array) || value.length !== length) throw new HandshakeError(`${name} must be ${length} bytes`);
  return value;
};

const principalField = (body: Record<string, unknown>): Principal => {
  try {
    return asPrincipal(body.principal);
  } catch (error) {
    throw new HandshakeError((error as Error).message);
  }
};

/** A duplex of whole frames, with a deadline on each read. */
export interface FrameChannel {
  send(bytes: Uint8Array): void;
  receive(): Promise<Uint8Array>;
}

export const serverHandshake = async (channel: FrameChannel, identity: Identity, random: (n: number) => Uint8Array): Promise<Principal> => {
  const challenge = random(CHALLENGE_BYTES);
  channel.send(encodeMessage(HANDSHAKE_PROTOCOL, 'hello', { principal: identity.principal, challenge }));
  const prove = read(await channel.receive(), 'prove');
  const client = principalField(prove);
  if (!verify(client, statement(challenge, client, identity.principal), bytesField(prove, 'signature', 64))) {
    throw new HandshakeError(`the client's signature does not prove ${client}`);
  }
  const theirs = bytesField(prove, 'challenge', CHALLENGE_BYTES);
  channel.send(encodeMessage(HANDSHAKE_PROTOCOL, 'proven', { signature: await identity.sign(statement(theirs, identity.principal, client)) }));
  return client;
};

export const clientHandshake = async (channel: FrameChannel, identity: Identity, random: (n: number) => Uint8Array): Promise<Principal> => {
  const hello = read(await channel.receive(), 'hello');
  const server = principalField(hello);
  const serverChallenge = bytesField(hello, 'challenge', CHALLENGE_BYTES);
  const challenge = random(CHALLENGE_BYTES);
  channel.send(
    encodeMessage(HANDSHAKE_PROTOCOL, 'prove', {
      principal: identity.principal,
      challenge,
      signature: await identity.sign(statement(serverChallenge, identity.principal, server)),
    }),
  );
  const proven = read(await channel.receive(), 'proven');
  if (!verify(server, statement(challenge, server, identity.principal), bytesField(proven, 'signature', 64))) {
    throw new HandshakeError(`the node's signature does not prove ${server}`);
  }
  return server;
};
