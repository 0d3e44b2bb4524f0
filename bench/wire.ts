/** CBOR encode/decode of a typical grid message against JSON.stringify/parse of the same content. */
import { randomBytes } from 'node:crypto';
import { decodeMessage, encodeMessage } from '../dist/wire/index.js';
import { blockCid } from '../dist/store/index.js';
import { medianBatched, row, type Row } from './measure.js';

export const benchWire = async (): Promise<Row[]> => {
  const token = blockCid(new TextEncoder().encode('bench token'), 0x71);
  const blob = new Uint8Array(randomBytes(64));
  const payload = ['greet', { name: 'Ada', n: 42, tags: ['a', 'b'], blob }];
  const message = encodeMessage(token, ...payload);
  const json = { to: token.toString(), slots: ['greet', { name: 'Ada', n: 42, tags: ['a', 'b'], blob: Buffer.from(blob).toString('base64') }] };
  const jsonText = JSON.stringify(json);

  const stringify = { name: 'JSON.stringify', median_ns: medianBatched(() => JSON.stringify(json)) };
  const parse = { name: 'JSON.parse', median_ns: medianBatched(() => JSON.parse(jsonText)) };
  return [
    row(stringify.name, stringify.median_ns),
    row(`encodeMessage (${message.length} bytes)`, medianBatched(() => encodeMessage(token, ...payload)), stringify),
    row(parse.name, parse.median_ns),
    row('decodeMessage, strict', medianBatched(() => decodeMessage(message)), parse),
  ];
};
