/**
 * Where nodes listen, as they say themselves: an address record is a node's
 * signature over its principal, its URL and when it began listening there
 * (`at`, its own clock in ms). A node hands its record to every peer it
 * connects to and gets theirs back; a peer that hears a newer record of a
 * node it keeps, naming another URL, dials the new URL instead of the old
 * one, remembers it, and passes the record on to the nodes connected to it —
 * so the peers of a node that had to move (its port was taken) follow it,
 * even those it does not know itself.
 *
 * What a record can do is bounded: it is believed only when signed by the
 * principal it names, only if newer than the last one believed for that
 * principal, and only for a principal this node already keeps as a peer (a
 * stranger's record changes nothing and is not kept). A replayed old record
 * is older. Nothing is verified for a record that is not newer, or whose `at`
 * is too far in this node's future.
 */
import { base64 } from 'multiformats/bases/base64';
import { asPrincipal, type Principal } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import { isPeerUrl } from './membership.js';

export interface AddressRecord {
  readonly principal: Principal;
  readonly url: string;
  /** When the node began listening at `url`, by its clock (ms since the epoch). */
  readonly at: number;
  /** Ed25519 over the statement, base64 (CapTP carries text). */
  readonly signature: string;
}

export class AddressError extends GridError {
  constructor(message: string) {
    super('ERR_ADDRESS', `address record: ${message}`);
  }
}

const DOMAIN = new TextEncoder().encode('promisegrid:address:v1\n');
export const MAX_ADDRESS_URL = 256;
/** How far ahead of this node's clock a record's `at` may be (clocks differ; a record from further ahead is refused unverified). */
export const MAX_ADDRESS_SKEW_MS = 10 * 60_000;

const statement = (principal: Principal, url: string, at: number) => concatBytes(DOMAIN, new TextEncoder().encode(`${principal}\n${url}\n${at}\n`));

export const signAddress = async (identity: Identity, url: string, at: number): Promise<AddressRecord> => {
  isPeerUrl(url) || fail(`not a ws:// URL: ${JSON.stringify(url)}`);
  return harden({ principal: identity.principal, url, at, signature: base64.baseEncode(await identity.sign(statement(identity.principal, url, at))) });
};

const fail = (message: string): never => {
  throw new AddressError(message);
};

/** The record's shape, without its signature (cheap: done before deciding whether to verify). */
export const addressShape = (value: unknown): AddressRecord => {
  if (typeof value !== 'object' || value === null) return fail('not a record');
  const { principal, url, at, signature } = value as Record<string, unknown>;
  let who: Principal;
  try {
    who = asPrincipal(principal);
  } catch (error) {
    return fail((error as Error).message);
  }
  if (typeof url !== 'string' || url.length > MAX_ADDRESS_URL || !isPeerUrl(url)) fail(`url must be a ws:// or wss:// URL of at most ${MAX_ADDRESS_URL} characters (got ${JSON.stringify(String(url).slice(0, 80))})`);
  if (!Number.isSafeInteger(at) || (at as number) < 0) fail(`at must be a non-negative integer (got ${JSON.stringify(at)})`);
  if (typeof signature !== 'string' || signature.length > 128) fail('signature must be base64 text');
  return harden({ principal: who, url: url as string, at: at as number, signature: signature as string });
};

export const verifyAddress = (record: AddressRecord): boolean => {
  let signature: Uint8Array;
  try {
    signature = base64.baseDecode(record.signature);
  } catch {
    return false;
  }
  return signature.length === 64 && verify(record.principal, statement(record.principal, record.url, record.at), signature);
};

const WILDCARD_HOSTS = new Set(['0.0.0.0', '[::]']);

/**
 * The URL to dial for a record: its own, except that a node listening on
 * every interface (`0.0.0.0`, `::`) can only say its port — the host is
 * then the one this node already reached it at.
 */
export const dialable = (recordUrl: string, formerUrl: string | undefined): string => {
  const announced = new URL(recordUrl);
  if (!WILDCARD_HOSTS.has(announced.hostname) || !formerUrl) return recordUrl;
  const former = new URL(formerUrl);
  return `${announced.protocol}//${former.hostname}:${announced.port}`;
};

export interface AddressBookPowers {
  readonly identity: Identity;
  readonly clock: () => number;
  /** Records believed before (from the home), any order. */
  readonly known?: readonly AddressRecord[];
  /** The principals this node keeps as peers now, with their URLs. */
  readonly peers: () => ReadonlyArray<{ readonly url: string; readonly principal?: Principal }>;
  /** Dial `url` instead of `former` (every URL `principal` was kept at); remember the change. */
  readonly move: (principal: Principal, url: string, former: readonly string[]) => Promise<void>;
  /** Keep the believed records across restarts. */
  readonly save: (records: readonly AddressRecord[]) => Promise<void>;
}

export type Heard = 'moved' | 'newer' | 'ignored';

export const makeAddressBook = (powers: AddressBookPowers) => {
  const records = new Map<Principal, AddressRecord>();
  for (const record of powers.known ?? []) {
    const known = records.get(record.principal);
    if (!known || known.at < record.at) records.set(record.principal, record);
  }
  let own: AddressRecord | undefined;
  const save = () => powers.save([...records.values()]);
  return {
    /** This node listens at `url` from now on. */
    listening: async (url: string) => {
      // Strictly later than any record this node signed before, even if the clock stepped back.
      const before = records.get(powers.identity.principal)?.at ?? -1;
      const signed = await signAddress(powers.identity, url, Math.max(powers.clock(), before + 1));
      records.set(signed.principal, (own = signed));
      return signed;
    },
    own: () => own,
    urlOf: (principal: Principal) => records.get(principal)?.url,
    /**
     * A record `from` a peer (its own, or one it passes on). Refused with an
     * AddressError if malformed or forged; 'moved' when a kept peer now
     * listens elsewhere (the caller passes the record on), 'newer' when it is
     * believed but changes no URL, 'ignored' when old or about no peer of ours.
     */
    hear: async (value: unknown): Promise<{ heard: Heard; record: AddressRecord }> => {
      const record = addressShape(value);
      const ignored = { heard: 'ignored' as const, record };
      if (record.principal === powers.identity.principal) return ignored;
      const known = records.get(record.principal);
      if (known && known.at >= record.at) return ignored;
      if (record.at > powers.clock() + MAX_ADDRESS_SKEW_MS) fail(`at ${record.at} is more than ${MAX_ADDRESS_SKEW_MS} ms ahead of this node's clock`);
      const kept = powers.peers().filter((peer) => peer.principal === record.principal || (known !== undefined && peer.url === known.url));
      if (kept.length === 0) return ignored;
      if (!verifyAddress(record)) fail(`the signature does not prove ${record.principal}`);
      records.set(record.principal, record);
      const url = dialable(record.url, kept[0]!.url);
      const former = [...new Set(kept.map((peer) => peer.url))].filter((kept) => kept !== url);
      if (former.length === 0) {
        await save();
        return { heard: 'newer', record };
      }
      await powers.move(record.principal, url, former);
      await save();
      return { heard: 'moved', record };
    },
  };
};

export type AddressBook = ReturnType<typeof makeAddressBook>;
