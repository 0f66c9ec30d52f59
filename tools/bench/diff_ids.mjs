// diff_ids.mjs - explain the first difference between two token-id lists
// (one decimal id per line) for the same UTF-8 text: index, byte offset in
// the text, nearby ids with their decoded text. Used by
// tools/check_tokenizer_parity.sh when `rlhf tokenize` and tiktoken disagree.
//
// Usage: node tools/bench/diff_ids.mjs TEXT_FILE EXPECTED_IDS GOT_IDS
// Exit status: 0 when the lists are equal, 1 otherwise.
import fs from 'node:fs';
import { gpt2Encoding } from '../npm/require_cache.mjs';

const [textFile, expFile, gotFile] = process.argv.slice(2);
if (!gotFile) {
  console.error('usage: node tools/bench/diff_ids.mjs TEXT_FILE EXPECTED_IDS GOT_IDS');
  process.exit(2);
}
const readIds = (f) => fs.readFileSync(f, 'utf8').split('\n').filter((l) => l !== '');
const exp = readIds(expFile);
const got = readIds(gotFile);
let i = 0;
while (i < exp.length && i < got.length && exp[i] === got[i]) i++;
if (i === exp.length && i === got.length) process.exit(0);

const enc = gpt2Encoding();
const dec = new TextDecoder('utf-8', { ignoreBOM: true }); // non-fatal: single tokens may be partial UTF-8
const show = (id) => {
  const n = Number(id);
  if (!/^\d+$/.test(id) || n > 50256) return `${JSON.stringify(id)} (not a token id)`;
  return `${n} ${JSON.stringify(dec.decode(enc.decode(Uint32Array.of(n))))}`;
};
try {
  const prefix = enc.decode(Uint32Array.from(exp.slice(0, i).map(Number)));
  const offset = prefix.length;
  const text = fs.readFileSync(textFile);
  const lo = Math.max(0, offset - 40);
  console.log(`  first difference at token index ${i} (byte offset ${offset}); ` +
    `expected ${exp.length} ids, got ${got.length}`);
  console.log(`  text around it: ${JSON.stringify(dec.decode(text.subarray(lo, offset)))} | ` +
    `${JSON.stringify(dec.decode(text.subarray(offset, offset + 40)))}`);
  const from = Math.max(0, i - 3);
  const to = Math.min(Math.max(exp.length, got.length), i + 6);
  for (let k = from; k < to; k++) {
    const e = k < exp.length ? show(exp[k]) : '-';
    const g = k < got.length ? show(got[k]) : '-';
    console.log(`  ${k === i ? '>' : ' '} [${k}] expected ${e.padEnd(28)} got ${g}`);
  }
} finally {
  enc.free();
}
process.exit(1);
