/**
 * Invitations: how the grid grows. An invitation is a token for the
 * introducer — the CID of a record `{ introducer, nonce, expires }` — usable
 * once, until it expires. The node that issued it keeps the open ones in the
 * home's `invitations` file (only the running node writes it: it holds the
 * home's lock) and strikes each off when it is redeemed, so a second use,
 * even after a restart, is refused.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { DAG_CBOR_CODEC, type Principal } from '../interface/ids.js';
import { GridError } from '../interface/errors.js';
import { blockCid } from '../store/hashing.js';
import { encode } from '../wire/index.js';

export class InvitationError extends GridError {}

interface Held {
  readonly expires: number;
  used: boolean;
}

export class Invitations {
  readonly #path: string;
  readonly #held: Map<string, Held>;
  #writing: Promise<void> = Promise.resolve();

  private constructor(path: string, held: Map<string, Held>) {
    this.#path = path;
    this.#held = held;
  }

  static async open(path: string): Promise<Invitations> {
    let saved: Record<string, Held> = {};
    try {
      saved = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new InvitationError('ERR_INVITATIONS', `cannot read ${path}: ${(error as Error).message}`);
    }
    return new Invitations(path, new Map(Object.entries(saved)));
  }

  /** A new invitation's token. */
  async create(introducer: Principal, expires: number, nonce: Uint8Array): Promise<string> {
    const cid = blockCid(encode({ introducer, nonce, expires }), DAG_CBOR_CODEC).toString();
    this.#held.set(cid, { expires, used: false });
    await this.#save();
    return cid;
  }

  /** Use an invitation up; refused if it is unknown, used or expired. */
  async redeem(cid: string, now: number): Promise<void> {
    const held = this.#held.get(cid);
    if (!held) throw new InvitationError('ERR_INVITATION', 'unknown invitation');
    if (held.used) throw new InvitationError('ERR_INVITATION', 'invitation already used');
    if (now >= held.expires) throw new InvitationError('ERR_INVITATION', `invitation expired at ${new Date(held.expires).toISOString()}`);
    held.used = true;
    await this.#save();
  }

  #save(): Promise<void> {
    const text = `${JSON.stringify(Object.fromEntries(this.#held), null, 2)}\n`;
    this.#writing = this.#writing.then(async () => {
      await writeFile(`${this.#path}.tmp`, text, { mode: 0o600 });
      await rename(`${this.#path}.tmp`, this.#path);
    });
    return this.#writing;
  }
}
