// tiktoken_bench.mjs - in-process throughput of the reference tokenizer
// (tiktoken, gpt2 encoding, ordinary encode) on one UTF-8 text file; used by
// tools/bench_tokenizer.sh as the baseline for the C tokenizer.
//
// Usage: node tools/bench/tiktoken_bench.mjs FILE
// Prints (MB = 1e6 bytes):
//   bytes: N
//   tiktoken_seconds: S
//   tiktoken_mb_per_s: X
//   tiktoken_tokens: N
import fs from 'node:fs';
import { gpt2Encoding, packageVersion } from '../npm/require_cache.mjs';

const file = process.argv[2];
if (!file) {
  console.error('usage: node tools/bench/tiktoken_bench.mjs FILE');
  process.exit(2);
}
const buf = fs.readFileSync(file);
let text;
try {
  // ignoreBOM: keep a leading U+FEFF as text (the C tokenizer sees the bytes).
  text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
} catch {
  console.error(`${file}: not valid UTF-8`);
  process.exit(1);
}

const enc = gpt2Encoding();
try {
  // Warm up on (about) the first 1 MB, cut at a line boundary.
  let cut = text.indexOf('\n', 1e6);
  if (cut < 0) cut = text.length;
  enc.encode(text.slice(0, cut), [], []);

  const t0 = process.hrtime.bigint();
  const ids = enc.encode(text, [], []);
  const t1 = process.hrtime.bigint();
  const seconds = Number(t1 - t0) / 1e9;
  console.log(`tiktoken_version: ${packageVersion('tiktoken')}`);
  console.log(`bytes: ${buf.length}`);
  console.log(`tiktoken_seconds: ${seconds.toFixed(3)}`);
  console.log(`tiktoken_mb_per_s: ${(buf.length / 1e6 / seconds).toFixed(2)}`);
  console.log(`tiktoken_tokens: ${ids.length}`);
} finally {
  enc.free();
}
