/// <reference types="ses" />
/**
 * The owner API (kernel/owner.ts) over CapTP, to a running node. CapTP
 * carries strings, numbers, arrays and records, not bytes: the table below
 * says, for each operation, how its arguments and its result cross, and
 * both sides are derived from it — `ownerFacet`, the methods a node serves
 * its own principal, and `remoteOwner`, what a client holding the node's key
 * calls. (`call` is not among them: it travels as a grid message, frames.ts.)
 */
import type { DocumentSpec } from '../docs/api.js';
import { quorumFromWire } from '../docs/governance.js';
import { base64 } from 'multiformats/bases/base64';
import { E } from '@endo/far';
import { decodeValue, encodeValue, type GridValue } from '../closures/values.js';
import type { NodeOwner } from '../kernel/owner.js';
import type { PendingView } from '../kernel/kernel.js';
import type { RevocationNotice } from '../kernel/revocations.js';
import type { ChainBlocks } from '../wire/shapes.js';

/** The owner's operations that cross the owner facet. */
export type FacetOwner = Omit<NodeOwner, 'call'>;
type Operation = keyof FacetOwner;

/** How one value crosses CapTP: `out` to what CapTP carries, `in` back (from whatever the other side sent). */
interface Crossing<T = unknown> {
  readonly out: (value: T) => unknown;
  readonly in: (wire: unknown) => T;
}

const same: Crossing = { out: (value) => value, in: (wire) => wire };
/** A value that crosses as it is (CapTP passes it, and the receiving method checks it). */
const asIs = <T>(): Crossing<T> => same as Crossing<T>;

const listOf = (wire: unknown, what: string): unknown[] => {
  if (!Array.isArray(wire)) throw new TypeError(`${what} must cross as a list`);
  return wire;
};

/** Bytes cross as base64 text: the one conversion of bytes on the owner facet. */
const bytes: Crossing<Uint8Array> = { out: (value) => base64.baseEncode(value), in: (wire) => base64.baseDecode(String(wire)) };
const blocks: Crossing<readonly Uint8Array[]> = { out: (list) => list.map(bytes.out), in: (wire) => listOf(wire, 'a block list').map(bytes.in) };

const chain: Crossing<ChainBlocks> = {
  out: (value) => ({ links: blocks.out(value.links), modules: blocks.out(value.modules) }),
  in: (wire) => {
    const { links, modules } = (wire ?? {}) as { links?: unknown; modules?: unknown };
    return { links: blocks.in(links), modules: blocks.in(modules) };
  },
};

const notice: Crossing<RevocationNotice> = {
  out: (value) => ({ ...value, signature: bytes.out(value.signature) }),
  in: (wire) => Object.freeze({ ...(wire as RevocationNotice), signature: bytes.in((wire as { signature?: unknown }).signature) }),
};

/** A pending call's arguments cross as canonical CBOR (they may hold bytes or links). */
const pendingViews: Crossing<PendingView[]> = {
  out: (views) => views.map((view) => ({ ...view, args: bytes.out(encodeValue(view.args)) })),
  in: (wire) => listOf(wire, 'pending calls').map((view) => Object.freeze({ ...(view as PendingView), args: decodeValue(bytes.in((view as { args?: unknown }).args)) as readonly GridValue[] })),
};

/** A new document's initial value crosses as canonical CBOR (it may hold bytes, links or big integers). */
const documentSpec: Crossing<Parameters<NodeOwner['createDocument']>[0]> = {
  out: (spec) => ({ ...spec, init: bytes.out(encodeValue(spec.init)) }),
  in: (wire) => {
    const spec = (wire ?? {}) as { reducer?: unknown; merges?: unknown; init?: unknown; governance?: unknown };
    return {
      reducer: String(spec.reducer),
      ...(spec.merges === undefined ? {} : { merges: listOf(spec.merges, 'merge steps').map(String) }),
      init: decodeValue(bytes.in(spec.init)),
      ...(spec.governance === undefined ? {} : { governance: governanceFrom(spec.governance) }),
    };
  },
};

/** A document's governance as it crosses: checked again by the genesis record, so only its shape here. */
const governanceFrom = (wire: unknown): NonNullable<DocumentSpec['governance']> => {
  const { members, quorum, weighted, deadlineMs } = (wire ?? {}) as Record<string, unknown>;
  return { members: String(members), quorum: quorumFromWire(typeof quorum === 'object' && quorum !== null ? (quorum as { k?: unknown }).k : quorum), weighted: weighted === true, deadlineMs: Number(deadlineMs) };
};

const optional = <T>(crossing: Crossing<T>): Crossing<T | undefined> => ({
  out: (value) => (value === undefined ? undefined : crossing.out(value)),
  in: (wire) => (wire === undefined || wire === null ? undefined : crossing.in(wire)),
});

/** How each operation's arguments (in order; unlisted ones as they are) and result cross. */
type EachCrossing<P extends readonly unknown[]> = { readonly [I in keyof P]?: Crossing<P[I]> };
type Crossings<F extends (...args: never[]) => unknown> = {
  readonly args?: EachCrossing<Parameters<F>>;
  readonly result?: Crossing<Awaited<ReturnType<F>>>;
};
const CROSSINGS: { readonly [K in Operation]: Crossings<FacetOwner[K]> } = {
  publish: { args: [bytes] },
  issue: {},
  delegate: {},
  revoke: {},
  chainBlocks: { result: optional(chain) },
  importChain: { args: [asIs<string>(), chain] },
  revocationNotice: { result: optional(notice) },
  pending: { result: pendingViews },
  createDocument: { args: [documentSpec] },
  documentConflicts: {},
  vote: {},
  followDocument: {},
  reputation: {},
};

/** The owner facet's methods, by name. */
export const OWNER_OPERATIONS = Object.freeze(Object.keys(CROSSINGS) as Operation[]);

type Wired = (...wire: unknown[]) => Promise<unknown>;

/** One operation as a node serves it: arguments in from CapTP, `operation` run, its result out. */
export const serveOperation = <K extends Operation>(name: K, operation: FacetOwner[K]): Wired => {
  const { args = [], result = same } = CROSSINGS[name] as { args?: readonly Crossing[]; result?: Crossing };
  return async (...wire) => harden(result.out(await (operation as (...args: unknown[]) => Promise<unknown>)(...wire.map((value, index) => (args[index] ?? same).in(value)))));
};

/** The owner facet's methods over `owner` (ownerOf a kernel), for the node to serve to its own principal. */
export const ownerFacet = (owner: FacetOwner): { readonly [K in Operation]: Wired } =>
  Object.fromEntries(OWNER_OPERATIONS.map((name) => [name, serveOperation(name, owner[name])])) as { [K in Operation]: Wired };

/**
 * The owner API of the node behind `facet` (its CapTP bootstrap), as a
 * client calls it; `settle` turns a refusal into the error to throw.
 */
export const remoteOwner = (facet: () => unknown, settle: <T>(promise: Promise<T>) => Promise<T>): FacetOwner => {
  const operations: Record<string, Wired> = {};
  for (const name of OWNER_OPERATIONS) {
    const { args = [], result = same } = CROSSINGS[name] as { args?: readonly Crossing[]; result?: Crossing };
    operations[name] = async (...given) => {
      const remote = E(facet() as Promise<Record<string, Wired>>) as unknown as Record<string, Wired>;
      return result.in(await settle(remote[name]!(...given.map((value, index) => (args[index] ?? same).out(value)))));
    };
  }
  return operations as unknown as FacetOwner;
};
