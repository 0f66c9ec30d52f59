// tiktoken_ids.mjs - print tiktoken's GPT-2 token ids for a UTF-8 text file,
// one decimal id per line: the reference side of tools/check_tokenizer_parity.sh
// (same output format as `rlhf tokenize`).
//
// Usage: node tools/bench/tiktoken_ids.mjs [--allow-special] FILE
//   default: ordinary encoding ("<|endoftext|>" is plain text), like
//   `rlhf tokenize`; --allow-special maps "<|endoftext|>" to 50256.
import fs from 'node:fs';
import { gpt2Encoding } from '../npm/require_cache.mjs';

const args = process.argv.slice(2);
const special = args[0] === '--allow-special';
if (special) args.shift();
if (args.length !== 1) {
  console.error('usage: node tools/bench/tiktoken_ids.mjs [--allow-special] FILE');
  process.exit(2);
}
const file = args[0];
let text;
try {
  // ignoreBOM: keep a leading U+FEFF as text (the C tokenizer sees the bytes).
  text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(fs.readFileSync(file));
} catch (e) {
  console.error(e.code ? `${file}: ${e.message}` : `${file}: not valid UTF-8`);
  process.exit(1);
}

const enc = gpt2Encoding();
let ids;
try {
  ids = special ? enc.encode(text, 'all') : enc.encode(text, [], []);
} finally {
  enc.free();
}

process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(0); // reader went away (e.g. | head)
  throw e;
});

const CHUNK = 1 << 16;
for (let i = 0; i < ids.length; i += CHUNK) {
  const part = Array.from(ids.subarray(i, i + CHUNK)).join('\n') + '\n';
  if (!process.stdout.write(part)) {
    await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
}
