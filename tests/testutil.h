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
/* the whole file dir/name (name NULL: the file dir), NUL-terminated (caller frees); *len (may be
 * NULL) gets its size. Fails the test when it cannot be read. */
char *tu_read(const char *dir, const char *name, size_t *len);
/* fails the test unless dir a and dir b hold the same bytes in file name */
void tu_same_file(const char *a, const char *b, const char *name);
/* count lines in s */
size_t tu_lines(const char *s);
/* A 300-id byte-level BPE trained on text, saved to tok_dir. */
void tu_tiny_bpe(const char *text, size_t n, const char *tok_dir);
/* The trainers' tests' fixture: tu_tiny_bpe, and a tiny random GPT-2 (2 layers, 2 heads, 32 wide,
 * 300 ids, 32 positions, seed 5) saved to model_dir. */
void tu_tiny_bpe_and_model(const char *text, size_t n, const char *tok_dir, const char *model_dir);

/* The folders and files of a trainer's test on a dataset: in a fresh tu_tmpdir(tag), train.jsonl
 * and eval.jsonl (the texts given), tok/ and model/ from tu_tiny_bpe_and_model on the train text. */
typedef struct {
    char dir[4096], tok[4200], model[4200], train[4200], eval[4200];
} tu_fixture;
void tu_fixture_make(tu_fixture *f, const char *tag, const char *train, size_t ntrain, const char *eval, size_t neval);
/* A copy of the GPT-2 folder src at dst with one NaN weight (ln_f.bias[0]): every forward gives NaN. */
void tu_nan_model(const char *src, const char *dst);

#endif
