/**
 * The shared-memory channel between the kernel and one vat: two rings in a
 * SharedArrayBuffer, one each way, each with one writer and one reader.
 * The messages a call needs on its way (run, done, reply, ctx.call, issue,
 * log) are framed in the rings with the bytes postMessage would carry
 * (arguments, values and env as canonical CBOR); anything else, or a message
 * too big for a frame, goes on the channel's MessagePort and a marker frame
 * holds its place in the ring, so messages are read in the order they were
 * sent. The reader of a marker takes the message off its port at once
 * (`receiveMessageOnPort`): it was posted before the marker was written.
 *
 * A ring's header is three 32-bit words: the byte position written up to,
 * the byte position read up to (both counting up and wrapping at 2^32), and
 * a flag the reader raises while it sleeps (`Atomics.wait`/`waitAsync` on
 * the write position), so the writer pays for `Atomics.notify` only then.
 *
 * The kernel reads what a vat writes as it reads bytes from a peer: every
 * frame is copied out of shared memory before it is decoded, and a frame
 * that is malformed is the vat's failure (ChannelError), never the kernel's.
 */
import { isUtf8 } from 'node:buffer';
import type { FromVat, ToVat, VatOutcome } from './protocol.js';

/** Bytes of each ring's frames (a power of two). */
export const RING_BYTES = 1 << 18;
/** A message whose frame is longer goes on the port (its marker in the ring). */
export const MAX_FRAME_BYTES = 1 << 16;
const HEADER_WORDS = 4;
const HEADER_BYTES = HEADER_WORDS * 4;
const WRITE = 0;
const READ = 1;
const SLEEPING = 2;
/** A length word saying the rest of the ring, to its end, is unused: the next frame starts at 0. */
const WRAP = -1;

/** What the other side wrote that cannot be read as a frame. */
export class ChannelError extends Error {
  readonly code = 'ERR_VAT_CHANNEL';
}

/** The memory for a vat's two rings: kernel to vat first, vat to kernel second. */
export const channelMemory = (): SharedArrayBuffer => new SharedArrayBuffer(2 * (HEADER_BYTES + RING_BYTES));

/** One direction of a channel. */
export class Ring {
  readonly #header: Int32Array;
  readonly #words: Int32Array;
  readonly #bytes: Uint8Array;

  /** `which`: 0 for the kernel's ring to the vat, 1 for the vat's to the kernel. */
  constructor(memory: SharedArrayBuffer, which: 0 | 1) {
    const base = which * (HEADER_BYTES + RING_BYTES);
    this.#header = new Int32Array(memory, base, HEADER_WORDS);
    this.#words = new Int32Array(memory, base + HEADER_BYTES, RING_BYTES / 4);
    this.#bytes = new Uint8Array(memory, base + HEADER_BYTES, RING_BYTES);
  }

  /** Writer: put one frame in the ring; false if there is no room for it now. */
  write(frame: Uint8Array): boolean {
    const length = frame.length;
    const padded = (length + 7) & ~3; // length word + frame, to a word boundary
    const write = Atomics.load(this.#header, WRITE);
    const read = Atomics.load(this.#header, READ);
    const used = (write - read) >>> 0;
    let at = (write >>> 0) & (RING_BYTES - 1);
    const tail = RING_BYTES - at;
    const skip = padded > tail ? tail : 0;
    if (used + skip + padded > RING_BYTES) return false;
    if (skip > 0) {
      this.#words[at >> 2] = WRAP;
      at = 0;
    }
    this.#words[at >> 2] = length;
    this.#bytes.set(frame, at + 4);
    Atomics.store(this.#header, WRITE, (write + skip + padded) | 0);
    return true;
  }

  /** Writer: wake the reader if it sleeps. */
  wake(): void {
    if (Atomics.load(this.#header, SLEEPING) !== 0) Atomics.notify(this.#header, WRITE);
  }

  /** Reader: whether a frame is waiting. */
  get waiting(): boolean {
    return Atomics.load(this.#header, WRITE) !== Atomics.load(this.#header, READ);
  }

  /** Reader: the next frame, copied out of shared memory, or undefined if none is waiting. */
  read(): Uint8Array | undefined {
    const write = Atomics.load(this.#header, WRITE);
    let read = Atomics.load(this.#header, READ);
    if (write === read) return undefined;
    let at = (read >>> 0) & (RING_BYTES - 1);
    let length = this.#words[at >> 2]!;
    if (length === WRAP) {
      read = (read + (RING_BYTES - at)) | 0;
      at = 0;
      length = this.#words[0]!;
    }
    const padded = (length + 7) & ~3;
    if (length < 0 || length > MAX_FRAME_BYTES || padded > ((write - read) >>> 0) || at + padded > RING_BYTES) {
      throw new ChannelError(`malformed frame: length ${length} at ${at}`);
    }
    const frame = this.#bytes.slice(at + 4, at + 4 + length);
    Atomics.store(this.#header, READ, (read + padded) | 0);
    return frame;
  }

  /** Reader: the write position, to sleep on while it stays the same. */
  get written(): number {
    return Atomics.load(this.#header, WRITE);
  }

  /** Reader: mark sleeping, then check nothing came meanwhile (the writer notifies only a reader marked so). */
  sleeping(on: boolean): void {
    Atomics.store(this.#header, SLEEPING, on ? 1 : 0);
  }

  /** The header, for Atomics.wait/waitAsync on its write position (index 0). */
  get header(): Int32Array {
    return this.#header;
  }
}

/** Frame kinds. POSTED: the message is on the port. */
const POSTED = 0;
const RUN = 1;
const REPLY = 2;
const CLOSURE = 3;
const DONE = 4;
const CALL = 5;
const LOG = 6;
const ISSUE = 7;

const FULFILLED = 0;
const REVOKED = 1;
const PROMISED = 2;

const utf8 = new TextEncoder();
/** Checked with isUtf8 first: a fatal TextDecoder takes Node 20's slow path (µs for a token). */
const fromUtf8 = new TextDecoder('utf-8');

/** Numbers as their 8 bytes (little-endian on every platform Node runs on). */
const number = new Float64Array(1);
const numberBytes = new Uint8Array(number.buffer);

/** Builds one frame in a reusable buffer. Text is mostly ASCII (tokens, principals): written byte by byte then. */
class FrameWriter {
  #buffer = new Uint8Array(4096);
  #at = 0;

  start(kind: number): this {
    this.#at = 0;
    return this.u8(kind);
  }

  #room(bytes: number) {
    if (this.#at + bytes <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(this.#buffer.length * 2, this.#at + bytes));
    grown.set(this.#buffer.subarray(0, this.#at));
    this.#buffer = grown;
  }

  u8(value: number): this {
    this.#room(1);
    this.#buffer[this.#at++] = value;
    return this;
  }

  #u32(at: number, value: number) {
    const buffer = this.#buffer;
    buffer[at] = value;
    buffer[at + 1] = value >>> 8;
    buffer[at + 2] = value >>> 16;
    buffer[at + 3] = value >>> 24;
  }

  f64(value: number): this {
    this.#room(8);
    number[0] = value;
    this.#buffer.set(numberBytes, this.#at);
    this.#at += 8;
    return this;
  }

  bytes(value: Uint8Array): this {
    this.#room(4 + value.length);
    this.#u32(this.#at, value.length);
    this.#buffer.set(value, this.#at + 4);
    this.#at += 4 + value.length;
    return this;
  }

  text(value: string): this {
    const length = value.length;
    this.#room(4 + length * 3);
    const buffer = this.#buffer;
    const start = this.#at + 4;
    let i = 0;
    for (; i < length; i++) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) break;
      buffer[start + i] = code;
    }
    const written = i === length ? length : i + utf8.encodeInto(value.slice(i), buffer.subarray(start + i)).written;
    this.#u32(this.#at, written);
    this.#at = start + written;
    return this;
  }

  outcome(answer: VatOutcome): this {
    switch (answer.status) {
      case 'fulfilled':
        return this.u8(FULFILLED).bytes(answer.value);
      case 'revoked':
        return this.u8(REVOKED).text(String(answer.code)).text(String(answer.reason));
      case 'promised':
        return this.u8(PROMISED).text(String(answer.token));
    }
  }

  get frame(): Uint8Array {
    return this.#buffer.subarray(0, this.#at);
  }
}

/** Reads one frame, every length checked against what is there. */
class FrameReader {
  #at = 0;
  constructor(readonly frame: Uint8Array) {}

  #need(bytes: number) {
    if (this.#at + bytes > this.frame.length) throw new ChannelError(`malformed frame: ${bytes} bytes past its end`);
  }

  u8(): number {
    this.#need(1);
    return this.frame[this.#at++]!;
  }

  f64(): number {
    this.#need(8);
    const f = this.frame;
    for (let i = 0; i < 8; i++) numberBytes[i] = f[this.#at + i]!;
    this.#at += 8;
    return number[0]!;
  }

  #length(): number {
    this.#need(4);
    const f = this.frame;
    const at = this.#at;
    const length = (f[at]! | (f[at + 1]! << 8) | (f[at + 2]! << 16) | (f[at + 3]! << 24)) >>> 0;
    this.#at += 4;
    this.#need(length);
    return length;
  }

  bytes(): Uint8Array {
    const length = this.#length();
    const value = this.frame.subarray(this.#at, this.#at + length);
    this.#at += length;
    return value;
  }

  text(): string {
    const length = this.#length();
    const start = this.#at;
    this.#at += length;
    const bytes = this.frame.subarray(start, start + length);
    if (!isUtf8(bytes)) throw new ChannelError('malformed frame: text that is not UTF-8');
    return fromUtf8.decode(bytes);
  }

  outcome(): VatOutcome {
    const status = this.u8();
    if (status === FULFILLED) return { status: 'fulfilled', value: this.bytes() };
    if (status === REVOKED) return { status: 'revoked', code: this.text() as never, reason: this.text() };
    if (status === PROMISED) return { status: 'promised', token: this.text() };
    throw new ChannelError(`malformed frame: outcome status ${status}`);
  }

  end(): void {
    if (this.#at !== this.frame.length) throw new ChannelError(`malformed frame: ${this.frame.length - this.#at} bytes left over`);
  }
}

/** Messages as frames: the one end of a channel's codec, for either side. */
const encodeTo = (writer: FrameWriter, message: ToVat | FromVat, toVat: boolean): Uint8Array | undefined => {
  if (toVat) {
    const m = message as ToVat;
    switch (m.t) {
      case 'run':
        return writer.start(RUN).f64(m.run).u8(m.fold ? 1 : 0).text(m.token).text(m.caller).bytes(m.args).frame;
      case 'reply':
        return writer.start(REPLY).f64(m.run).f64(m.sub).outcome(m.answer).frame;
      case 'closure':
        return writer.start(CLOSURE).text(m.token).text(m.code).text(m.export).bytes(m.env).frame;
      default:
        return undefined;
    }
  }
  const m = message as FromVat;
  switch (m.t) {
    case 'done':
      return writer.start(DONE).f64(m.run).u8(m.pure ? 1 : 0).outcome(m.answer).frame;
    case 'call':
      return writer.start(CALL).f64(m.run).f64(m.sub).u8(m.sync ? 1 : 0).text(m.token).bytes(m.args).frame;
    case 'log':
      return writer.start(LOG).f64(m.run).text(m.line).frame;
    case 'issue':
      return writer.start(ISSUE).f64(m.run).f64(m.sub).text(m.export).bytes(m.env).frame;
    default:
      return undefined;
  }
};

const decodeToVat = (frame: Uint8Array): ToVat | typeof POSTED => {
  const r = new FrameReader(frame);
  let message: ToVat;
  switch (r.u8()) {
    case POSTED:
      r.end();
      return POSTED;
    case RUN: {
      const run = r.f64();
      const fold = r.u8() === 1;
      message = { t: 'run', run, token: r.text() as never, caller: r.text() as never, args: r.bytes(), ...(fold ? { fold: true as const } : {}) };
      break;
    }
    case REPLY:
      message = { t: 'reply', run: r.f64(), sub: r.f64(), answer: r.outcome() };
      break;
    case CLOSURE:
      message = { t: 'closure', token: r.text() as never, code: r.text() as never, export: r.text(), env: r.bytes() };
      break;
    default:
      throw new ChannelError(`malformed frame: kind ${frame[0]}`);
  }
  r.end();
  return message;
};

const decodeFromVat = (frame: Uint8Array): FromVat | typeof POSTED => {
  const r = new FrameReader(frame);
  let message: FromVat;
  switch (r.u8()) {
    case POSTED:
      r.end();
      return POSTED;
    case DONE:
      message = { t: 'done', run: r.f64(), pure: r.u8() === 1, answer: r.outcome() };
      break;
    case CALL: {
      const run = r.f64();
      const sub = r.f64();
      const sync = r.u8() === 1;
      message = { t: 'call', run, sub, token: r.text(), args: r.bytes(), ...(sync ? { sync: true as const } : {}) };
      break;
    }
    case LOG:
      message = { t: 'log', run: r.f64(), line: r.text() };
      break;
    case ISSUE:
      message = { t: 'issue', run: r.f64(), sub: r.f64(), export: r.text(), env: r.bytes() };
      break;
    default:
      throw new ChannelError(`malformed frame: kind ${frame[0]}`);
  }
  r.end();
  return message;
};

const POSTED_FRAME = new Uint8Array([POSTED]);

interface Port {
  postMessage(message: unknown): void;
}

/**
 * One side's end of a channel: sends on its outgoing ring (or its port,
 * marked in the ring) and reads its incoming ring. `receive` takes a
 * message posted on the other side's port (`receiveMessageOnPort`).
 * Messages that find the ring full wait in order in a backlog, which
 * `flush` moves into the ring as the reader makes room.
 */
export class ChannelEnd<Out extends ToVat | FromVat, In extends ToVat | FromVat> {
  readonly out: Ring;
  readonly in: Ring;
  readonly #writer = new FrameWriter();
  readonly #toVat: boolean;
  readonly #port: Port;
  readonly #receive: () => { message: unknown } | undefined;
  #backlog: Uint8Array[] = [];

  constructor(memory: SharedArrayBuffer, side: 'kernel' | 'vat', port: Port, receive: () => { message: unknown } | undefined) {
    this.#toVat = side === 'kernel';
    this.out = new Ring(memory, this.#toVat ? 0 : 1);
    this.in = new Ring(memory, this.#toVat ? 1 : 0);
    this.#port = port;
    this.#receive = receive;
  }

  /** Queue one message; true if it is in the ring or on the port now (then `wake` the reader), false if it waits in the backlog. */
  send(message: Out): boolean {
    const encoded = encodeTo(this.#writer, message, this.#toVat);
    let frame: Uint8Array;
    if (encoded && encoded.length <= MAX_FRAME_BYTES) frame = encoded;
    else {
      this.#port.postMessage(message);
      frame = POSTED_FRAME;
    }
    if (this.#backlog.length === 0 && this.out.write(frame)) return true;
    this.#backlog.push(frame === POSTED_FRAME ? frame : frame.slice());
    return false;
  }

  /** Messages still waiting for room in the ring. */
  get backlogged(): number {
    return this.#backlog.length;
  }

  /** Move the backlog into the ring as far as it fits; true if any moved. */
  flush(): boolean {
    let moved = 0;
    while (moved < this.#backlog.length && this.out.write(this.#backlog[moved]!)) moved += 1;
    if (moved > 0) this.#backlog = this.#backlog.slice(moved);
    return moved > 0;
  }

  /** The next message the other side sent, or undefined; throws ChannelError on a malformed one. */
  next(): In | undefined {
    const frame = this.in.read();
    if (!frame) return undefined;
    const message = this.#toVat ? decodeFromVat(frame) : decodeToVat(frame);
    if (message !== POSTED) return message as In;
    const posted = this.#receive();
    if (!posted) throw new ChannelError('a marker frame without its message on the port');
    return posted.message as In;
  }
}
