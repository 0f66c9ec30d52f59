// gen_tokenizer_golden.mjs - write tests/data/tokenizer/gpt2_golden.jsonl,
// the reference token ids the C GPT-2 tokenizer is tested against.
//
// Usage (from anywhere, after tools/get_gpt2_vocab.sh has run):
//   node tools/golden/gen_tokenizer_golden.mjs [OUT.jsonl]
// Each line: {"name", "text", "ids", "ids_special"} where
//   ids         = tiktoken gpt2 encode(text, [], [])  (ordinary: "<|endoftext|>" is plain text)
//   ids_special = tiktoken gpt2 encode(text, "all")   ("<|endoftext|>" -> 50256)
// Texts come from texts.mjs (deterministic). tiktoken is loaded from the
// rlhf.c cache ($RLHF_CACHE or ~/.cache/rlhf.c)/npm/node_modules.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gpt2Encoding, packageVersion } from '../npm/require_cache.mjs';
import { allCases } from './texts.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const out = path.resolve(process.argv[2] || path.join(ROOT, 'tests', 'data', 'tokenizer', 'gpt2_golden.jsonl'));
const MAX_BYTES = 1.5e6;

const enc = gpt2Encoding();
const lines = [];
const rejected = [];
let nSpecialDiff = 0;
try {
  for (const { name, text } of allCases()) {
    let ids;
    let idsSpecial;
    try {
      ids = Array.from(enc.encode(text, [], []));
      idsSpecial = Array.from(enc.encode(text, 'all'));
    } catch (e) {
      rejected.push(`${name}: ${e && e.message ? e.message : e}`);
      continue;
    }
    // Round trip: the ordinary ids must decode to exactly the UTF-8 bytes of text.
    const bytes = Buffer.from(enc.decode(Uint32Array.from(ids)));
    if (!bytes.equals(Buffer.from(text, 'utf8'))) {
      rejected.push(`${name}: decode(encode(text)) != text`);
      continue;
    }
    if (idsSpecial.length !== ids.length || idsSpecial.some((v, i) => v !== ids[i])) nSpecialDiff++;
    lines.push(JSON.stringify({ name, text, ids, ids_special: idsSpecial }));
  }
} finally {
  enc.free();
}

const body = lines.join('\n') + '\n';
const size = Buffer.byteLength(body, 'utf8');
if (size > MAX_BYTES) {
  console.error(`golden file would be ${size} bytes (> ${MAX_BYTES}); trim texts.mjs`);
  process.exit(1);
}
fs.mkdirSync(path.dirname(out), { recursive: true });
const tmp = `${out}.tmp.${process.pid}`;
fs.writeFileSync(tmp, body);
fs.renameSync(tmp, out);

console.log(`wrote ${path.relative(process.cwd(), out) || out}: ${lines.length} cases, ${size} bytes ` +
  `(tiktoken ${packageVersion('tiktoken')}; ${nSpecialDiff} cases where ids_special != ids)`);
if (rejected.length) {
  console.error(`skipped ${rejected.length} case(s):`);
  for (const r of rejected) console.error(`  ${r}`);
  process.exit(2);
}
