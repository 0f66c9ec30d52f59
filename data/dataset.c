/* dataset.c — JSON Lines datasets (TRL field names): streaming reader, tokenisation with length
 * limits, seeded order, padded batches with masks. See dataset.h for the rules. */
#include "dataset.h"

#include "fileio.h"
#include "rng.h"

#include <errno.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- kinds and fields ------------------------------------------------------------------------ */

enum { F_TEXT = 1, F_PROMPT = 2, F_COMPLETION = 4, F_CHOSEN = 8, F_REJECTED = 16, F_NFIELDS = 5 };
static const char *const field_names[F_NFIELDS] = {"text", "prompt", "completion", "chosen", "rejected"};

const char *ds_kind_name(ds_kind k)
{
    switch (k) {
    case DS_TEXT: return "text";
    case DS_PROMPT_COMPLETION: return "prompt-completion";
    case DS_PREFERENCE: return "preference";
    case DS_PROMPT_ONLY: return "prompt-only";
    }
    return "?";
}

/* the kind a set of fields makes, or -1 */
static int kind_of(unsigned f, int *implicit)
{
    *implicit = 0;
    if (f == F_TEXT) return DS_TEXT;
    if (f == (F_PROMPT | F_COMPLETION)) return DS_PROMPT_COMPLETION;
    if (f == (F_PROMPT | F_CHOSEN | F_REJECTED)) return DS_PREFERENCE;
    if (f == (F_CHOSEN | F_REJECTED)) {
        *implicit = 1;
        return DS_PREFERENCE;
    }
    if (f == F_PROMPT) return DS_PROMPT_ONLY;
    return -1;
}

/* ---- streaming reader ------------------------------------------------------------------------ */

struct ds_reader {
    FILE *f;             /* NULL: reading from mem */
    int own;             /* 1: fclose at the end (not stdin) */
    const char *mem;     /* ds_reader_open_mem's bytes (not owned) */
    size_t memlen, mempos;
    char *path;
    char *line;
    size_t cap;
    long lineno, nrec;
    unsigned fields;     /* the first record's fields: every record must have the same */
    long first_line;
    int margins;         /* preference files: the first record had a "margin" (then every one must) */
    ds_kind kind;
    int implicit;
    json_t *cur;         /* the record whose strings *rec points into */
    char *pbuf;          /* implicit prompt (a copy of the shared prefix) */
    size_t pcap;
};

int ds_reader_open(ds_reader **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    ds_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return fio_fail(err, errlen, "out of memory");
    }
    if (strcmp(path, "-") == 0) {
        r->f = stdin;
    } else {
        r->f = fopen(path, "rb");
        r->own = 1;
        if (!r->f) {
            fio_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
            free(r->path);
            free(r);
            return -1;
        }
    }
    *out = r;
    return 0;
}

int ds_reader_open_mem(ds_reader **out, const char *data, size_t len, const char *name, char *err, size_t errlen)
{
    *out = NULL;
    ds_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(name))) {
        free(r);
        return fio_fail(err, errlen, "out of memory");
    }
    r->mem = data;
    r->memlen = len;
    *out = r;
    return 0;
}

/* the next line (with its '\n', if any) into r->line, as getline does: its length, or -1 at the end */
static ssize_t next_line(ds_reader *r)
{
    if (r->f) return getline(&r->line, &r->cap, r->f);
    if (r->mempos >= r->memlen) return -1;
    const char *s = r->mem + r->mempos, *nl = memchr(s, '\n', r->memlen - r->mempos);
    const size_t n = nl ? (size_t)(nl - s) + 1 : r->memlen - r->mempos;
    if (n + 1 > r->cap) {
        char *b = realloc(r->line, n + 1);
        if (!b) return -2;
        r->line = b;
        r->cap = n + 1;
    }
    memcpy(r->line, s, n);
    r->line[n] = 0;
    r->mempos += n;
    return (ssize_t)n;
}

void ds_reader_close(ds_reader *r)
{
    if (!r) return;
    if (r->own && r->f) fclose(r->f);
    json_decref(r->cur);
    free(r->line);
    free(r->pbuf);
    free(r->path);
    free(r);
}

ds_kind ds_reader_kind(const ds_reader *r) { return r->kind; }
int ds_reader_implicit_prompt(const ds_reader *r) { return r->implicit; }

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n') return 0;
    return 1;
}

/* "a", "b" and "c" into buf */
static const char *field_list(unsigned f, char *buf, size_t n)
{
    size_t o = 0;
    buf[0] = 0;
    int k = 0, total = 0;
    for (int i = 0; i < F_NFIELDS; i++) total += (f >> i) & 1;
    for (int i = 0; i < F_NFIELDS && o < n; i++)
        if (f & (1u << i)) {
            const char *sep = k == 0 ? "" : (k == total - 1 ? " and " : ", ");
            o += (size_t)snprintf(buf + o, n - o, "%s\"%s\"", sep, field_names[i]);
            k++;
        }
    if (total == 0) snprintf(buf, n, "none");
    return buf;
}

/* TRL's extract_prompt on bytes, never cutting inside a UTF-8 sequence; returns the prompt length */
static size_t shared_prompt(const char *c, size_t lc, const char *r, size_t lr)
{
    size_t m = lc < lr ? lc : lr, i = 0;
    while (i < m && c[i] == r[i]) i++;
    if (i == m) { /* one is a prefix of the other: TRL's loop ends on the last index */
        i = m - 1;
        while (i > 0 && ((unsigned char)c[i] & 0xC0) == 0x80) i--;
        return i;
    }
    while (i > 0 && ((unsigned char)c[i] & 0xC0) == 0x80) i--;
    if (i > 0 && c[i - 1] == ' ') i--; /* the space belongs to the completions */
    return i;
}

static int rec_fail(const ds_reader *r, char *err, size_t errlen, const char *what, const char *field)
{
    return fio_fail(err, errlen, "%s:%ld:1: field \"%s\" %s", r->path, r->lineno, field, what);
}

/* TRL's optional per-pair "margin" of preference records: a finite number in every record or in none */
static int read_margin(ds_reader *r, const json_t *j, ds_record *rec, char *err, size_t errlen)
{
    json_t *v = json_object_get(j, "margin");
    if (r->kind != DS_PREFERENCE) return 0;
    if (r->nrec == 0) r->margins = v != NULL;
    if ((v != NULL) != r->margins)
        return fio_fail(err, errlen, "%s:%ld:1: field \"margin\" is %s (line %ld %s one: margins go in every record or in none)",
                        r->path, r->lineno, v ? "present" : "missing", r->first_line, r->margins ? "has" : "has no");
    if (v && !(json_is_number(v) && isfinite(json_number_value(v)))) return rec_fail(r, err, errlen, "must be a number", "margin");
    /* kept as a float: a larger double would become infinite */
    if (v && !(fabs(json_number_value(v)) <= FLT_MAX))
        return rec_fail(r, err, errlen, "must be a number of at most 3.4e38 in magnitude", "margin");
    rec->has_margin = v != NULL;
    rec->margin = v ? json_number_value(v) : 0;
    return 0;
}

int ds_reader_next(ds_reader *r, ds_record *rec, char *err, size_t errlen)
{
    memset(rec, 0, sizeof *rec);
    json_decref(r->cur);
    r->cur = NULL;
    for (;;) {
        ssize_t got = next_line(r);
        if (got < 0) {
            if (got == -2) return fio_fail(err, errlen, "%s:%ld: out of memory", r->path, r->lineno + 1);
            if (r->f && ferror(r->f)) return fio_fail(err, errlen, "%s: read error after line %ld", r->path, r->lineno);
            if (r->nrec == 0) return fio_fail(err, errlen, "%s: empty file (no records)", r->path);
            return 0;
        }
        r->lineno++;
        if (blank(r->line, (size_t)got)) continue;
        while (got > 0 && (r->line[got - 1] == '\n' || r->line[got - 1] == '\r')) got--; /* columns stay on this line */
        json_error_t je;
        json_t *j = json_loadb(r->line, (size_t)got, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
        if (!j)
            return fio_fail(err, errlen, "%s:%ld:%d: invalid JSON: %s", r->path, r->lineno, je.column > 0 ? je.column : 1,
                            je.text);
        r->cur = j;
        if (!json_is_object(j)) return fio_fail(err, errlen, "%s:%ld:1: a record must be a JSON object", r->path, r->lineno);
        unsigned f = 0;
        for (int i = 0; i < F_NFIELDS; i++)
            if (json_object_get(j, field_names[i])) f |= 1u << i;
        char a[128], b[128];
        if (r->nrec == 0) {
            int k = kind_of(f, &r->implicit);
            if (k < 0)
                return fio_fail(err, errlen,
                                "%s:%ld:1: no dataset kind has the fields %s: a record needs \"text\"; \"prompt\" and "
                                "\"completion\"; \"prompt\", \"chosen\" and \"rejected\"; \"chosen\" and \"rejected\"; or "
                                "\"prompt\" alone",
                                r->path, r->lineno, field_list(f, a, sizeof a));
            r->kind = (ds_kind)k;
            r->fields = f;
            r->first_line = r->lineno;
        } else if (f != r->fields) {
            unsigned missing = r->fields & ~f, extra = f & ~r->fields;
            for (int i = 0; i < F_NFIELDS; i++)
                if (missing & (1u << i))
                    return fio_fail(err, errlen, "%s:%ld:1: field \"%s\" is missing (line %ld makes this a %s%s dataset: %s)",
                                    r->path, r->lineno, field_names[i], r->first_line,
                                    r->implicit ? "implicit-prompt " : "", ds_kind_name(r->kind),
                                    field_list(r->fields, b, sizeof b));
            for (int i = 0; i < F_NFIELDS; i++)
                if (extra & (1u << i))
                    return fio_fail(err, errlen,
                                    "%s:%ld:1: field \"%s\" does not belong here (line %ld makes this a %s%s dataset: %s)",
                                    r->path, r->lineno, field_names[i], r->first_line,
                                    r->implicit ? "implicit-prompt " : "", ds_kind_name(r->kind),
                                    field_list(r->fields, b, sizeof b));
        }
        const char *s[F_NFIELDS] = {0};
        size_t n[F_NFIELDS] = {0};
        for (int i = 0; i < F_NFIELDS; i++) {
            if (!(f & (1u << i))) continue;
            json_t *v = json_object_get(j, field_names[i]);
            if (!json_is_string(v))
                return rec_fail(r, err, errlen,
                                json_is_array(v) ? "must be a string (conversational lists of messages are not supported)"
                                                 : "must be a string",
                                field_names[i]);
            s[i] = json_string_value(v);
            n[i] = json_string_length(v);
            int may_be_empty = (1u << i) == F_PROMPT && r->kind != DS_PROMPT_ONLY;
            if (n[i] == 0 && !may_be_empty) return rec_fail(r, err, errlen, "is empty", field_names[i]);
        }
        if (read_margin(r, j, rec, err, errlen)) return -1;
        rec->line = r->lineno;
        rec->text = s[0], rec->text_len = n[0];
        rec->prompt = s[1], rec->prompt_len = n[1];
        rec->completion = s[2], rec->completion_len = n[2];
        rec->chosen = s[3], rec->chosen_len = n[3];
        rec->rejected = s[4], rec->rejected_len = n[4];
        if (r->implicit) {
            if (n[3] == n[4] && memcmp(s[3], s[4], n[3]) == 0)
                return fio_fail(err, errlen, "%s:%ld:1: fields \"chosen\" and \"rejected\" are the same text", r->path,
                                r->lineno);
            size_t p = shared_prompt(s[3], n[3], s[4], n[4]);
            if (p + 1 > r->pcap) {
                char *nb = realloc(r->pbuf, p + 1);
                if (!nb) return fio_fail(err, errlen, "out of memory");
                r->pbuf = nb;
                r->pcap = p + 1;
            }
            memcpy(r->pbuf, s[3], p);
            r->pbuf[p] = 0;
            rec->prompt = r->pbuf, rec->prompt_len = p;
            rec->chosen += p, rec->chosen_len -= p;
            rec->rejected += p, rec->rejected_len -= p;
        }
        r->nrec++;
        return 1;
    }
}

/* ---- tokenised dataset ----------------------------------------------------------------------- */

ds_load_opts ds_load_defaults(void)
{
    ds_load_opts o = {0};
    o.add_eos = 1;
    o.require_kind = -1;
    return o;
}

void ds_free(ds_dataset *d)
{
    free(d->path);
    free(d->ex);
    free(d->tok);
    memset(d, 0, sizeof *d);
}

/* encode s[0..n) (+ EOS when eos >= 0) into v (emptied first) */
static int encode(tok_encoder *e, const char *s, size_t n, int32_t eos, tok_ids *v)
{
    v->n = 0;
    if (n && tok_encode(e, s, n, 0, v)) return -1;
    if (eos >= 0 && tok_ids_push(v, eos)) return -1;
    return 0;
}

static int pool_append(tok_ids *pool, const int32_t *ids, size_t n, size_t *off)
{
    *off = pool->n;
    for (size_t i = 0; i < n; i++)
        if (tok_ids_push(pool, ids[i])) return -1;
    return 0;
}

static int clampi(size_t n, long lim) { return (int)(lim > 0 && (long)n > lim ? (size_t)lim : n); }

static int bad_opts(const ds_load_opts *o, char *err, size_t errlen)
{
    if (o && o->max_len == 1) return fio_fail(err, errlen, "a maximum sequence length of 1 leaves no token to predict");
    return 0;
}

/* read, check and tokenise every record of r (closed here) */
static int load_records(ds_dataset *d, const tok_tokenizer *t, ds_reader *r, const char *path, const ds_load_opts *o,
                        char *err, size_t errlen)
{
    ds_load_opts defs = ds_load_defaults();
    if (!o) o = &defs;
    tok_encoder *e = o->encoder ? o->encoder : tok_encoder_create(t);
    tok_ids pool = {0}, p = {0}, a = {0}, b = {0};
    size_t cap = 0;
    int rc = -1;
    d->path = strdup(path);
    d->eos_id = tok_eot_id(t);
    d->pad_id = d->eos_id >= 0 ? d->eos_id : 0;
    const int32_t eos = o->add_eos ? d->eos_id : -1;
    if (!e || !d->path) {
        fio_fail(err, errlen, "out of memory");
        goto done;
    }
    ds_record rec;
    int got;
    while ((got = ds_reader_next(r, &rec, err, errlen)) == 1) {
        if (d->n == 0) {
            d->kind = ds_reader_kind(r);
            d->implicit_prompt = ds_reader_implicit_prompt(r);
            if (o->require_kind >= 0 && (int)d->kind != o->require_kind) {
                fio_fail(err, errlen, "%s:%ld:1: this is a %s dataset (fields %s); a %s dataset is needed here", path,
                         rec.line, ds_kind_name(d->kind),
                         d->kind == DS_TEXT ? "\"text\""
                         : d->kind == DS_PROMPT_COMPLETION ? "\"prompt\", \"completion\""
                         : d->kind == DS_PREFERENCE        ? (d->implicit_prompt ? "\"chosen\", \"rejected\"" : "\"prompt\", \"chosen\", \"rejected\"")
                                                           : "\"prompt\"",
                         ds_kind_name((ds_kind)o->require_kind));
                goto done;
            }
        }
        int fail = 0;
        if (d->kind == DS_TEXT) {
            fail |= encode(e, NULL, 0, -1, &p);
            fail |= encode(e, rec.text, rec.text_len, eos, &a);
            b.n = 0;
        } else {
            fail |= encode(e, rec.prompt, rec.prompt_len, -1, &p);
            if (d->kind == DS_PROMPT_COMPLETION) fail |= encode(e, rec.completion, rec.completion_len, eos, &a);
            else if (d->kind == DS_PREFERENCE) fail |= encode(e, rec.chosen, rec.chosen_len, eos, &a);
            else a.n = 0;
            if (d->kind == DS_PREFERENCE) fail |= encode(e, rec.rejected, rec.rejected_len, eos, &b);
            else b.n = 0;
        }
        if (fail) {
            fio_fail(err, errlen, "%s:%ld: out of memory while tokenising", path, rec.line);
            goto done;
        }
        /* the length rules of dataset.h, in order */
        int np = clampi(p.n, o->max_prompt_len);
        int na = clampi(a.n, o->max_completion_len), nb = clampi(b.n, o->max_completion_len);
        if (o->max_len > 0) {
            if (np > o->max_len - 1) np = o->max_len - 1;
            if (na > o->max_len - np) na = o->max_len - np;
            if (nb > o->max_len - np) nb = o->max_len - np;
        }
        d->n_prompt_cut += (size_t)np < p.n;
        d->n_completion_cut += ((size_t)na < a.n) + ((size_t)nb < b.n);
        if (d->n == cap) {
            size_t nc = cap ? 2 * cap : 256;
            ds_example *ne = realloc(d->ex, nc * sizeof *ne);
            if (!ne) {
                fio_fail(err, errlen, "out of memory");
                goto done;
            }
            d->ex = ne;
            cap = nc;
        }
        ds_example *x = &d->ex[d->n];
        x->np = np, x->na = na, x->nb = nb, x->line = rec.line;
        x->margin = (float)rec.margin;
        d->has_margins = rec.has_margin;
        /* an empty prompt has no ids at all (p.ids NULL: no offset may be added to it) */
        if (pool_append(&pool, np ? p.ids + (p.n - (size_t)np) : p.ids, (size_t)np, &x->prompt) ||
            pool_append(&pool, a.ids, (size_t)na, &x->a) || pool_append(&pool, b.ids, (size_t)nb, &x->b)) {
            fio_fail(err, errlen, "out of memory");
            goto done;
        }
        int row = np + (na > nb ? na : nb);
        if (row > d->max_row) d->max_row = row;
        d->n_completion_tokens += (size_t)na + (size_t)nb;
        d->n++;
    }
    if (got < 0) goto done;
    d->tok = pool.ids;
    d->ntok = pool.n;
    pool.ids = NULL;
    rc = 0;
done:
    tok_ids_free(&pool);
    tok_ids_free(&p);
    tok_ids_free(&a);
    tok_ids_free(&b);
    if (e != o->encoder) tok_encoder_free(e);
    ds_reader_close(r);
    if (rc) ds_free(d);
    return rc;
}

int ds_load(ds_dataset *d, const tok_tokenizer *t, const char *path, const ds_load_opts *o, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    ds_reader *r;
    if (bad_opts(o, err, errlen) || ds_reader_open(&r, path, err, errlen)) return -1;
    return load_records(d, t, r, path, o, err, errlen);
}

int ds_load_mem(ds_dataset *d, const tok_tokenizer *t, const char *data, size_t len, const char *name,
                const ds_load_opts *o, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    ds_reader *r;
    if (bad_opts(o, err, errlen) || ds_reader_open_mem(&r, data, len, name, err, errlen)) return -1;
    return load_records(d, t, r, name, o, err, errlen);
}

/* ---- order ----------------------------------------------------------------------------------- */

void ds_order(size_t n, uint64_t seed, uint64_t epoch, size_t *perm)
{
    for (size_t i = 0; i < n; i++) perm[i] = i;
    uint64_t s = rng_stream(seed, epoch);
    for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
        size_t j = (size_t)rng_below(&s, i);
        size_t tmp = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = tmp;
    }
}

int ds_sampler_create(ds_sampler *s, size_t n, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    if (n == 0) return -1;
    s->perm = malloc(n * sizeof *s->perm);
    if (!s->perm) return -1;
    s->n = n;
    s->seed = seed;
    s->perm_epoch = UINT64_MAX;
    return 0;
}

void ds_sampler_free(ds_sampler *s)
{
    free(s->perm);
    memset(s, 0, sizeof *s);
}

void ds_sampler_next(ds_sampler *s, size_t k, uint64_t *cursor, size_t *idx)
{
    for (size_t i = 0; i < k; i++, (*cursor)++) {
        uint64_t e = *cursor / s->n;
        if (e != s->perm_epoch) {
            ds_order(s->n, s->seed, e, s->perm);
            s->perm_epoch = e;
        }
        idx[i] = s->perm[*cursor % s->n];
    }
}

/* ---- batches --------------------------------------------------------------------------------- */

int ds_batch_create(ds_batch *b, int max_rows, int max_T, char *err, size_t errlen)
{
    memset(b, 0, sizeof *b);
    if (max_rows < 1 || max_T < 1) return fio_fail(err, errlen, "a batch needs at least one row of one token");
    size_t n = (size_t)max_rows * (size_t)max_T;
    b->max_rows = max_rows;
    b->max_T = max_T;
    b->tokens = malloc(n * sizeof *b->tokens);
    b->targets = malloc(n * sizeof *b->targets);
    b->attn = malloc(n * sizeof *b->attn);
    b->loss_mask = malloc(n * sizeof *b->loss_mask);
    b->lengths = malloc((size_t)max_rows * sizeof *b->lengths);
    b->prompt_lengths = malloc((size_t)max_rows * sizeof *b->prompt_lengths);
    b->index = malloc((size_t)max_rows * sizeof *b->index);
    if (!b->tokens || !b->targets || !b->attn || !b->loss_mask || !b->lengths || !b->prompt_lengths || !b->index) {
        ds_batch_free(b);
        return fio_fail(err, errlen, "out of memory for a batch of %d x %d", max_rows, max_T);
    }
    return 0;
}

void ds_batch_free(ds_batch *b)
{
    free(b->tokens);
    free(b->targets);
    free(b->attn);
    free(b->loss_mask);
    free(b->lengths);
    free(b->prompt_lengths);
    free(b->index);
    memset(b, 0, sizeof *b);
}

/* row r = prompt ++ completion, padded to b->T */
static void fill_row(const ds_dataset *d, ds_batch *b, int r, size_t ex, const int32_t *prompt, int np,
                     const int32_t *comp, int nc)
{
    const int T = b->T, n = np + nc;
    int32_t *tk = b->tokens + (size_t)r * T, *tg = b->targets + (size_t)r * T;
    float *at = b->attn + (size_t)r * T, *lm = b->loss_mask + (size_t)r * T;
    memcpy(tk, prompt, (size_t)np * sizeof *tk);
    memcpy(tk + np, comp, (size_t)nc * sizeof *tk);
    for (int t = n; t < T; t++) tk[t] = d->pad_id;
    for (int t = 0; t < T; t++) {
        int real_next = t + 1 < n;
        tg[t] = real_next ? tk[t + 1] : d->pad_id;
        at[t] = t < n ? 1.0f : 0.0f;
        lm[t] = real_next && t + 1 >= np && d->kind != DS_PROMPT_ONLY ? 1.0f : 0.0f;
    }
    b->lengths[r] = n;
    b->prompt_lengths[r] = np;
    b->index[r] = ex;
}

int ds_batch_fill(const ds_dataset *d, const size_t *idx, size_t k, ds_batch *b, char *err, size_t errlen)
{
    const int pair = d->kind == DS_PREFERENCE;
    size_t rows = pair ? 2 * k : k;
    if (rows > (size_t)b->max_rows)
        return fio_fail(err, errlen, "a batch of %zu rows does not fit the %d allocated", rows, b->max_rows);
    int T = 1;
    for (size_t i = 0; i < k; i++) {
        if (idx[i] >= d->n) return fio_fail(err, errlen, "example %zu is out of range (%zu examples)", idx[i], d->n);
        const ds_example *x = &d->ex[idx[i]];
        int len = x->np + (x->na > x->nb ? x->na : x->nb);
        if (len > T) T = len;
    }
    if (T > b->max_T) return fio_fail(err, errlen, "a row of %d tokens does not fit the %d allocated", T, b->max_T);
    b->B = (int)rows;
    b->T = T;
    for (size_t i = 0; i < k; i++) {
        const ds_example *x = &d->ex[idx[i]];
        const int32_t *pr = d->tok + x->prompt;
        fill_row(d, b, (int)i, idx[i], pr, x->np, d->tok + x->a, x->na);
        if (pair) fill_row(d, b, (int)(k + i), idx[i], pr, x->np, d->tok + x->b, x->nb);
    }
    return 0;
}

size_t ds_batch_loss_tokens(const ds_batch *b)
{
    size_t n = 0, total = (size_t)b->B * (size_t)b->T;
    for (size_t i = 0; i < total; i++) n += b->loss_mask[i] != 0.0f;
    return n;
}

/* ---- prompt sets ------------------------------------------------------------------------------- */

int ds_prompts_make(const ds_dataset *d, const size_t *idx, size_t n, ds_prompts *p, char *err, size_t errlen)
{
    memset(p, 0, sizeof *p);
    p->rows = malloc((n + 1) * sizeof *p->rows);
    p->len = malloc((n + 1) * sizeof *p->len);
    if (!p->rows || !p->len) {
        ds_prompts_free(p);
        return fio_fail(err, errlen, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        const ds_example *e = &d->ex[idx ? idx[i] : i];
        if (e->np < 1) {
            ds_prompts_free(p);
            return fio_fail(err, errlen, "%s:%ld: empty prompt", d->path, e->line);
        }
        p->rows[i] = d->tok + e->prompt;
        p->len[i] = e->np;
    }
    p->n = (int)n;
    return 0;
}

void ds_prompts_free(ds_prompts *p)
{
    free(p->rows);
    free(p->len);
    memset(p, 0, sizeof *p);
}

int ds_prompts_max_len(const ds_prompts *p)
{
    int m = 0;
    for (int i = 0; i < p->n; i++) m = p->len[i] > m ? p->len[i] : m;
    return m;
}
