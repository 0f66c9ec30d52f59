/* corpus.h — the demo's default corpus: Debian's English fortunes, cleaned, split into train and
 * held-out by a fixed rule, and cut into the prompt files every later stage reads.
 *
 * ---- Source -------------------------------------------------------------------------------------
 * A fortune file is a file directly in the source folder (default /usr/share/games/fortunes) whose
 * name has no '.' and which has a strfile index NAME.dat beside it. Subfolders are never read:
 * Debian puts the offensive fortunes in off/ and the other languages' packages (fortunes-de, -fr,
 * -it, ...) in their own folders, so the top level is the English `fortunes` package. The .u8
 * names are symlinks with a '.', so they are skipped too. Files are read in byte order of name.
 *
 * ---- Records ------------------------------------------------------------------------------------
 * A file is split on lines that are exactly "%". Each record is normalised (corpus_normalize):
 *   - a backspace erases the character before it (fortune's overstrike: "_\bx" and "x\bx" -> "x");
 *   - bytes that are not valid UTF-8 are dropped;
 *   - every run of white space or control characters (line breaks, indentation, tabs, BEL, NBSP)
 *     becomes one space, and leading and trailing space is removed.
 * So a record is one line of text. The demo's models are tiny with a short context: hard line wraps
 * and indentation cost tokens and teach nothing about what the text says.
 * A record is dropped when it is empty, has fewer than min_words words (space-separated), is longer
 * than max_bytes, is not text (letters are fewer than min_letters of its non-space characters:
 * ASCII art, code, tables), or repeats an earlier record exactly.
 *
 * ---- Order and split ------------------------------------------------------------------------------
 * h = corpus_hash(record) is 64-bit FNV-1a of its bytes. Records are ordered by (h, bytes), so the
 * output does not depend on which file a record came from or on the order of files, and topics are
 * mixed (the pretrainer's validation tail is a fair sample). A record is held out iff
 * h % heldout_mod == 0 (default 20: ~5%) — a property of the text alone, so a record never changes
 * side when files are added, removed or reordered, and duplicates always land on the same side.
 *
 * ---- Prompts --------------------------------------------------------------------------------------
 * The prompt of a record of n words is its first p = min(prompt_words, n / 2) words (default
 * prompt_words 4; a short record keeps at least half of itself for the completion). The completion
 * is the rest of the record starting with the space after the prompt, so prompt + completion is
 * exactly the record (TRL's convention: the two strings are concatenated as they are).
 *
 * ---- Files written by corpus_write (into DIR) ---------------------------------------------------
 *   train.txt, heldout.txt           records joined by "<|endoftext|>" (between records, none at the
 *                                     end, no newlines): text for the tokenizer and for pretraining
 *                                     (the delimiter is the special token only when the reader
 *                                     allows specials)
 *   sft_train.jsonl, sft_heldout.jsonl    {"prompt": ..., "completion": ...} per record
 *   prompts_train.jsonl, prompts_heldout.jsonl   {"prompt": ...} per record (RL rollouts, preference
 *                                     sampling, held-out evaluation); one line per record, so the
 *                                     same prompt can occur more than once
 *   corpus.json                      source files, rules, counts (records / words / bytes per split,
 *                                     dropped per reason); written last, so its presence means the
 *                                     folder is complete
 * Each file is written whole or not at all (temporary name + rename).
 */
#ifndef RLHF_CORPUS_H
#define RLHF_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#define CORPUS_DEFAULT_SRC "/usr/share/games/fortunes"

typedef struct {
    int prompt_words;     /* 4: words in a prompt (at most half the record) */
    size_t min_words;     /* 2: shorter records are dropped (a prompt needs a completion) */
    size_t max_bytes;     /* 1000: longer records (after normalisation) are dropped (~1.3%) */
    double min_letters;   /* 0.5: minimum share of letters among non-space characters */
    uint32_t heldout_mod; /* 20: held out iff corpus_hash % heldout_mod == 0 */
} corpus_opts;

corpus_opts corpus_defaults(void);

typedef struct {
    char *text;           /* normalised, one line, valid UTF-8, NUL-terminated */
    size_t len;
    size_t words;
    uint64_t hash;        /* corpus_hash(text, len) */
    int heldout;
    uint32_t file;        /* index into corpus.files */
} corpus_record;

typedef struct {
    char *name;           /* as given to corpus_add_text (the file name within the source folder) */
    size_t bytes;         /* size of the file */
    size_t raw;           /* "%"-separated records in it */
    size_t kept;          /* records of it in the corpus (after dropping and de-duplication) */
} corpus_file;

typedef struct {
    size_t empty, short_, huge, not_text, duplicate;
} corpus_dropped;

typedef struct {
    size_t records, words, bytes; /* bytes of the records' text, delimiters not counted */
} corpus_count;

typedef struct {
    corpus_opts opts;
    corpus_file *files;
    size_t nfiles;
    corpus_record *rec;   /* in output order after corpus_finish */
    size_t n, cap;
    corpus_dropped dropped;
    corpus_count train, heldout; /* valid after corpus_finish */
    int finished;
} corpus;

/* An empty corpus with options o (NULL: defaults). */
int corpus_create(corpus **out, const corpus_opts *o, char *err, size_t errlen);
void corpus_free(corpus *c);

/* Add the records of one fortune file's text (split on "%" lines, normalised, filtered). */
int corpus_add_text(corpus *c, const char *name, const char *text, size_t len, char *err, size_t errlen);

/* Add every fortune file of a folder (see Source above); fails if there is none. */
int corpus_add_dir(corpus *c, const char *dir, char *err, size_t errlen);

/* Order, de-duplicate and split (see above). Call once, after the last add. */
int corpus_finish(corpus *c, char *err, size_t errlen);

/* corpus_create + corpus_add_dir + corpus_finish. */
int corpus_build(corpus **out, const char *dir, const corpus_opts *o, char *err, size_t errlen);

/* Write the files listed above into dir (created if needed). src is recorded in corpus.json. */
int corpus_write(const corpus *c, const char *dir, const char *src, char *err, size_t errlen);

/* ---- the rules, exposed for tests and for other data --------------------------------------------- */

/* 64-bit FNV-1a (offset basis 14695981039346656037, prime 1099511628211). */
uint64_t corpus_hash(const void *p, size_t n);

/* Normalise one raw record into dst (room for n + 1 bytes; dst may not alias src); returns the new
 * length (dst is NUL-terminated). */
size_t corpus_normalize(char *dst, const char *src, size_t n);

/* Bytes of the prompt of a normalised record (see Prompts above); 0 when it has under two words. */
size_t corpus_prompt_len(const char *text, size_t len, int prompt_words);

#endif
