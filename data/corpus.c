/* corpus.c — the default corpus from Debian's English fortunes: records, normalisation, the
 * hash-based train/held-out split and the prompt files. The rules are documented in corpus.h. */
#include "corpus.h"

#include "fileio.h"
#include "tok.h" /* TOK_EOT_TEXT */

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

corpus_opts corpus_defaults(void)
{
    return (corpus_opts){.prompt_words = 4, .min_words = 2, .max_bytes = 1000, .min_letters = 0.5, .heldout_mod = 20};
}

uint64_t corpus_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- normalisation --------------------------------------------------------------------------- */

static int is_space_or_control(utf8proc_int32_t cp)
{
    utf8proc_category_t k = utf8proc_category(cp);
    return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL ||
           k == UTF8PROC_CATEGORY_ZP;
}

size_t corpus_normalize(char *dst, const char *src, size_t n)
{
    size_t o = 0, i = 0;
    int pending = 0; /* a space is owed before the next visible character */
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)src + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l < 0) { /* not UTF-8: drop the byte */
            i++;
            continue;
        }
        if (cp == '\b') { /* overstrike: erase the character before (a whole UTF-8 sequence) */
            if (pending) {
                pending = 0;
            } else if (o > 0) {
                do o--;
                while (o > 0 && ((unsigned char)dst[o] & 0xC0) == 0x80);
                if (o > 0 && dst[o - 1] == ' ') {
                    o--;
                    pending = 1;
                }
            }
        } else if (is_space_or_control(cp)) {
            pending = o > 0;
        } else {
            if (pending) dst[o++] = ' ';
            pending = 0;
            memcpy(dst + o, src + i, (size_t)l);
            o += (size_t)l;
        }
        i += (size_t)l;
    }
    dst[o] = 0;
    return o;
}

static size_t count_words(const char *s, size_t n)
{
    if (n == 0) return 0;
    size_t w = 1;
    for (size_t i = 0; i < n; i++) w += s[i] == ' ';
    return w;
}

/* share of letters among the non-space characters of a normalised record */
static double letter_share(const char *s, size_t n)
{
    size_t letters = 0, visible = 0;
    for (size_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l < 0) l = 1; /* cannot happen after corpus_normalize */
        if (cp != ' ') {
            visible++;
            utf8proc_category_t k = utf8proc_category(cp);
            letters += k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
        }
        i += (size_t)l;
    }
    return visible ? (double)letters / (double)visible : 0.0;
}

size_t corpus_prompt_len(const char *text, size_t len, int prompt_words)
{
    size_t n = count_words(text, len);
    size_t p = n / 2;
    if (prompt_words >= 0 && (size_t)prompt_words < p) p = (size_t)prompt_words;
    if (p == 0) return 0;
    size_t seen = 0;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ' ' && ++seen == p) return i;
    return 0; /* not reached: p < n words means p spaces exist */
}

/* ---- building -------------------------------------------------------------------------------- */

int corpus_create(corpus **out, const corpus_opts *o, char *err, size_t errlen)
{
    *out = NULL;
    corpus_opts opts = o ? *o : corpus_defaults();
    if (opts.min_words < 2) return fio_fail(err, errlen, "corpus: min_words must be at least 2 (a prompt needs a completion)");
    if (opts.prompt_words < 1) return fio_fail(err, errlen, "corpus: prompt_words must be at least 1");
    if (opts.heldout_mod < 2) return fio_fail(err, errlen, "corpus: heldout_mod must be at least 2");
    if (opts.max_bytes < 1) return fio_fail(err, errlen, "corpus: max_bytes must be positive");
    corpus *c = calloc(1, sizeof *c);
    if (!c) return fio_fail(err, errlen, "out of memory");
    c->opts = opts;
    *out = c;
    return 0;
}

void corpus_free(corpus *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free(c->rec[i].text);
    for (size_t i = 0; i < c->nfiles; i++) free(c->files[i].name);
    free(c->rec);
    free(c->files);
    free(c);
}

/* normalise one "%"-separated piece and keep it unless a rule drops it */
static int add_piece(corpus *c, uint32_t file, const char *s, size_t n, char *buf)
{
    size_t len = corpus_normalize(buf, s, n);
    if (len == 0) return 0; /* an empty piece (e.g. after the last "%") is not a record */
    c->files[file].raw++;
    size_t words = count_words(buf, len);
    if (words < c->opts.min_words) {
        c->dropped.short_++;
        return 0;
    }
    if (len > c->opts.max_bytes) {
        c->dropped.huge++;
        return 0;
    }
    if (letter_share(buf, len) < c->opts.min_letters) {
        c->dropped.not_text++;
        return 0;
    }
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        corpus_record *r = realloc(c->rec, cap * sizeof *r);
        if (!r) return -1;
        c->rec = r;
        c->cap = cap;
    }
    char *t = malloc(len + 1);
    if (!t) return -1;
    memcpy(t, buf, len + 1);
    c->rec[c->n++] = (corpus_record){.text = t, .len = len, .words = words, .hash = corpus_hash(t, len), .file = file};
    return 0;
}

int corpus_add_text(corpus *c, const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    if (c->finished) return fio_fail(err, errlen, "corpus: records added after corpus_finish");
    corpus_file *f = realloc(c->files, (c->nfiles + 1) * sizeof *f);
    if (!f) return fio_fail(err, errlen, "out of memory");
    c->files = f;
    char *nm = strdup(name);
    if (!nm) return fio_fail(err, errlen, "out of memory");
    uint32_t file = (uint32_t)c->nfiles++;
    c->files[file] = (corpus_file){.name = nm, .bytes = len};
    char *buf = malloc(len + 1); /* a normalised piece is never longer than the piece */
    if (!buf) return fio_fail(err, errlen, "out of memory");
    size_t start = 0, ls = 0;
    int rc = 0;
    while (ls <= len && rc == 0) {
        const char *nl = memchr(text + ls, '\n', len - ls);
        size_t le = nl ? (size_t)(nl - text) : len;
        if (le - ls == 1 && text[ls] == '%') { /* a separator line */
            rc = add_piece(c, file, text + start, ls - start, buf);
            start = le + 1;
        }
        ls = le + 1;
    }
    if (rc == 0 && start < len) rc = add_piece(c, file, text + start, len - start, buf);
    free(buf);
    return rc ? fio_fail(err, errlen, "out of memory") : 0;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int corpus_add_dir(corpus *c, const char *dir, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) return fio_fail(err, errlen, "%s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    char path[4096], dat[4200];
    while ((e = readdir(d))) {
        if (strchr(e->d_name, '.')) continue; /* ".", "..", NAME.dat, NAME.u8, anything with an extension */
        struct stat st;
        fio_join(path, sizeof path, dir, e->d_name);
        snprintf(dat, sizeof dat, "%s.dat", path);
        if (stat(path, &st) || !S_ISREG(st.st_mode) || stat(dat, &st) || !S_ISREG(st.st_mode)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = fio_fail(err, errlen, "out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = fio_fail(err, errlen, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0) rc = fio_fail(err, errlen, "%s: no fortune files (NAME with an index NAME.dat)", dir);
    if (rc == 0) qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len;
        char *text = fio_read_all(fio_join(path, sizeof path, dir, names[i]), &len, err, errlen);
        if (!text) {
            rc = -1;
            break;
        }
        rc = corpus_add_text(c, names[i], text, len, err, errlen);
        free(text);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

/* output order: hash, then bytes, then source file (identical records differ only in where they
 * came from; the first file's copy is kept) */
static int cmp_records(const void *pa, const void *pb)
{
    const corpus_record *a = pa, *b = pb;
    if (a->hash != b->hash) return a->hash < b->hash ? -1 : 1;
    size_t m = a->len < b->len ? a->len : b->len;
    int r = memcmp(a->text, b->text, m);
    if (r) return r;
    if (a->len != b->len) return a->len < b->len ? -1 : 1;
    return (a->file > b->file) - (a->file < b->file);
}

int corpus_finish(corpus *c, char *err, size_t errlen)
{
    if (c->finished) return fio_fail(err, errlen, "corpus: corpus_finish called twice");
    if (c->n) qsort(c->rec, c->n, sizeof *c->rec, cmp_records);
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++) {
        corpus_record *r = &c->rec[i];
        if (k > 0 && c->rec[k - 1].len == r->len && memcmp(c->rec[k - 1].text, r->text, r->len) == 0) {
            free(r->text);
            c->dropped.duplicate++;
            continue;
        }
        r->heldout = r->hash % c->opts.heldout_mod == 0;
        corpus_count *cnt = r->heldout ? &c->heldout : &c->train;
        cnt->records++;
        cnt->words += r->words;
        cnt->bytes += r->len;
        c->files[r->file].kept++;
        c->rec[k++] = *r;
    }
    c->n = k;
    c->finished = 1;
    if (c->train.records == 0 || c->heldout.records == 0)
        return fio_fail(err, errlen, "corpus: %zu training and %zu held-out records; both splits need some",
                        c->train.records, c->heldout.records);
    return 0;
}

int corpus_build(corpus **out, const char *dir, const corpus_opts *o, char *err, size_t errlen)
{
    corpus *c;
    if (corpus_create(&c, o, err, errlen)) return -1;
    if (corpus_add_dir(c, dir, err, errlen) || corpus_finish(c, err, errlen)) {
        corpus_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* ---- writing --------------------------------------------------------------------------------- */

/* one JSON object as a line of f (consumes j) */
static int add_json_line(FILE *f, json_t *j)
{
    int rc = !j || json_dumpf(j, f, JSON_COMPACT | JSON_PRESERVE_ORDER) || fputc('\n', f) == EOF;
    json_decref(j);
    return rc ? -1 : 0;
}

static json_t *count_json(const corpus_count *n)
{
    return json_pack("{s:I, s:I, s:I}", "records", (json_int_t)n->records, "words", (json_int_t)n->words, "bytes",
                     (json_int_t)n->bytes);
}

static json_t *summary_json(const corpus *c, const char *src)
{
    const corpus_opts *o = &c->opts;
    json_t *files = json_array();
    for (size_t i = 0; files && i < c->nfiles; i++)
        json_array_append_new(files, json_pack("{s:s, s:I, s:I, s:I}", "name", c->files[i].name, "bytes",
                                               (json_int_t)c->files[i].bytes, "records", (json_int_t)c->files[i].raw,
                                               "kept", (json_int_t)c->files[i].kept));
    char split[128];
    snprintf(split, sizeof split, "fnv1a64(record) %% %u == 0 -> held out", (unsigned)o->heldout_mod);
    return json_pack("{s:s, s:{s:i, s:I, s:I, s:f, s:i, s:s, s:s}, s:o, s:{s:I, s:I, s:I, s:I}, s:o, s:o}",
                     "source", src ? src : "",
                     "rules", "prompt_words", o->prompt_words, "min_words", (json_int_t)o->min_words, "max_bytes",
                     (json_int_t)o->max_bytes, "min_letters", o->min_letters, "heldout_mod", (int)o->heldout_mod,
                     "split", split, "delimiter", TOK_EOT_TEXT,
                     "files", files,
                     "dropped", "short", (json_int_t)c->dropped.short_, "huge", (json_int_t)c->dropped.huge, "not_text",
                     (json_int_t)c->dropped.not_text, "duplicate", (json_int_t)c->dropped.duplicate,
                     "train", count_json(&c->train), "heldout", count_json(&c->heldout));
}

int corpus_write(const corpus *c, const char *dir, const char *src, char *err, size_t errlen)
{
    if (!c->finished) return fio_fail(err, errlen, "corpus: corpus_write before corpus_finish");
    if (fio_mkdirs(dir, err, errlen)) return -1;
    char path[4096];
    /* corpus.json marks a complete folder: remove an old one before touching the rest */
    if (unlink(fio_join(path, sizeof path, dir, "corpus.json")) && errno != ENOENT)
        return fio_fail(err, errlen, "%s: %s", path, strerror(errno));
    /* [k][h]: k = text, sft, prompts; h = 0 train, 1 held out. Built in memory streams, then each
     * written atomically. */
    static const char *names[3][2] = {{"train.txt", "heldout.txt"},
                                      {"sft_train.jsonl", "sft_heldout.jsonl"},
                                      {"prompts_train.jsonl", "prompts_heldout.jsonl"}};
    char *buf[3][2] = {{0}};
    size_t len[3][2] = {{0}};
    FILE *f[3][2] = {{0}};
    int rc = 0;
    for (int k = 0; k < 3; k++)
        for (int h = 0; h < 2; h++)
            if (!(f[k][h] = open_memstream(&buf[k][h], &len[k][h]))) rc = -1;
    size_t first[2] = {1, 1};
    for (size_t i = 0; i < c->n && rc == 0; i++) {
        const corpus_record *r = &c->rec[i];
        int h = r->heldout;
        size_t p = corpus_prompt_len(r->text, r->len, c->opts.prompt_words);
        if (!first[h] && fputs(TOK_EOT_TEXT, f[0][h]) == EOF) rc = -1;
        first[h] = 0;
        if (fwrite(r->text, 1, r->len, f[0][h]) != r->len) rc = -1;
        rc |= add_json_line(f[1][h], json_pack("{s:s%, s:s%}", "prompt", r->text, p, "completion", r->text + p, r->len - p));
        rc |= add_json_line(f[2][h], json_pack("{s:s%}", "prompt", r->text, p));
    }
    for (int k = 0; k < 3; k++)
        for (int h = 0; h < 2; h++)
            if (f[k][h] && fclose(f[k][h])) rc = -1; /* fclose sets buf/len */
    if (rc) rc = fio_fail(err, errlen, "out of memory");
    for (int k = 0; k < 3 && rc == 0; k++)
        for (int h = 0; h < 2 && rc == 0; h++)
            rc = fio_write_atomic(fio_join(path, sizeof path, dir, names[k][h]), buf[k][h], len[k][h], err, errlen);
    for (int k = 0; k < 3; k++)
        for (int h = 0; h < 2; h++) free(buf[k][h]);
    if (rc) return -1;
    json_t *s = summary_json(c, src);
    char *js = s ? json_dumps(s, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(s);
    if (!js) return fio_fail(err, errlen, "out of memory");
    size_t jl = strlen(js);
    js[jl] = '\n'; /* json_dumps leaves no newline; overwrite the NUL (length is passed) */
    rc = fio_write_atomic(fio_join(path, sizeof path, dir, "corpus.json"), js, jl + 1, err, errlen);
    free(js);
    return rc;
}
