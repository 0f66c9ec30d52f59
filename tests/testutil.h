/* testutil.h — helpers shared by the Criterion suites: locating test data and the GPT-2
 * vocabulary cache, scratch folders, writing small files, and running the CLI. */
#ifndef RLHF_TESTUTIL_H
#define RLHF_TESTUTIL_H

#include <stddef.h>

/* tests/data/<rel> */
const char *tu_data(const char *rel);
/* the GPT-2 vocabulary cache made by tools/get_gpt2_vocab.sh: <cache>/gpt2/<layout> */
const char *tu_gpt2(const char *layout);
/* a fresh empty folder under the build's temporary area */
const char *tu_tmpdir(const char *tag);
/* write a file (whole) */
void tu_write(const char *path, const char *data, size_t len);
/* run `rlhf ARGS` with stdin from in_path (or /dev/null); captures stdout and stderr into
 * fresh strings (caller frees). Returns the exit status. */
int tu_run(const char *args, const char *in_path, char **out, char **err);
/* count lines in s */
size_t tu_lines(const char *s);
/* The trainers' tests' fixture: a 300-id byte-level BPE trained on text, saved to tok_dir, and a
 * tiny random GPT-2 (2 layers, 2 heads, 32 wide, 300 ids, 32 positions, seed 5) saved to model_dir. */
void tu_tiny_bpe_and_model(const char *text, size_t n, const char *tok_dir, const char *model_dir);
/* A copy of the GPT-2 folder src at dst with one NaN weight (ln_f.bias[0]): every forward gives NaN. */
void tu_nan_model(const char *src, const char *dst);

#endif
