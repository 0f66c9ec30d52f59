/* cli.c — option parsing, error lines, fast output and the progress bar for `rlhf`. See cli.h. */
#include "cli.h"

#include "checkpoint.h"
#include "clock.h"
#include "dp.h"

#include <ctype.h>
#include <fcntl.h>
#include <errno.h>
#include <limits.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The process's ranks under mpirun (NULL: one process) and, on ranks above 0 (whose output is
 * silenced), the standard error their error line still goes to. Process-wide by nature, like the
 * OpenMP thread count: set once by main. */
static dp *cli_ranks;
static FILE *cli_err;

void cli_dp_start(int *argc, char ***argv)
{
    char err[512];
    if (dp_init(&cli_ranks, argc, argv, err, sizeof err)) {
        fprintf(stderr, "rlhf: %s\n", err);
        exit(1);
    }
    if (dp_rank(cli_ranks) == 0) return;
    /* one writer: rank 0 prints results and progress; the others only their error line */
    const int fd = dup(2), null = open("/dev/null", O_WRONLY);
    cli_err = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (null >= 0) {
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
}

void cli_dp_end(void) { dp_finalize(cli_ranks); }

dp *cli_dp(void) { return cli_ranks; }

_Noreturn void cli_die(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    const int rank = dp_rank(cli_ranks);
    /* the same error on every rank is shown once: rank 0's ends them all first */
    if (rank > 0) usleep(1000 * 1000);
    FILE *f = cli_err ? cli_err : stderr;
    fprintf(f, "rlhf %s: ", cmd);
    if (rank > 0) fprintf(f, "rank %d of %d: ", rank, dp_size(cli_ranks));
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
    fflush(f);
    dp_abort(cli_ranks, 1); /* under mpirun: every rank ends now */
}

/* the resolved folders (the CLI resolves a handful of options once per process) */
static char resolved[8][4096];
static int nresolved;

static void resolve_path(const char *cmd, const char *opt, const char **path, int strict)
{
    char dir[4096], err[4200];
    if (!*path) return;
    if (ckpt_resolve(*path, dir, sizeof dir, err, sizeof err)) {
        if (strict) cli_die(cmd, "%s %s", opt, err);
        return;
    }
    if (strcmp(dir, *path) == 0) return;
    if (nresolved == (int)(sizeof resolved / sizeof *resolved)) cli_die(cmd, "too many model paths");
    char *keep = resolved[nresolved++];
    memcpy(keep, dir, sizeof dir);
    fprintf(stderr, "rlhf %s: %s %s: using %s\n", cmd, opt, *path, keep);
    *path = keep;
}

void cli_model_path(const char *cmd, const char *opt, const char **path) { resolve_path(cmd, opt, path, 1); }
void cli_tokenizer_path(const char *cmd, const char *opt, const char **path) { resolve_path(cmd, opt, path, 0); }

/* the default an option's field holds now, as --help shows it ("" for none) */
static void default_text(const cli_opt *o, char *b, size_t n)
{
    b[0] = 0;
    switch (o->type) {
    case OPT_STR:
        if (*(const char **)o->dst) snprintf(b, n, "%s", *(const char **)o->dst);
        break;
    case OPT_INT: snprintf(b, n, "%d", *(const int *)o->dst); break;
    case OPT_LONG: snprintf(b, n, "%ld", *(const long *)o->dst); break;
    case OPT_U64: snprintf(b, n, "%llu", (unsigned long long)*(const uint64_t *)o->dst); break;
    case OPT_FLOAT: snprintf(b, n, "%g", (double)*(const float *)o->dst); break;
    case OPT_DOUBLE: snprintf(b, n, "%g", *(const double *)o->dst); break;
    case OPT_ENUM: {
        const cli_enum *e = o->dst;
        int k = 0;
        while (e->names[k] && k < *e->value) k++;
        if (e->names[k]) snprintf(b, n, "%s", e->names[k]);
        break;
    }
    case OPT_FLAG:
    case OPT_MULTI: break;
    }
}

/* "a|b|c" of an enum's choices */
static const char *choice_list(const cli_opt *o, char *b, size_t n)
{
    size_t k = 0;
    b[0] = 0;
    const cli_enum *e = o->dst;
    for (int i = 0; e->names[i] && k < n; i++) k += (size_t)snprintf(b + k, n - k, "%s%s", i ? "|" : "", e->names[i]);
    return b;
}

static const char *arg_of(const cli_opt *o, char *b, size_t n)
{
    if (o->type == OPT_ENUM && !o->arg) return choice_list(o, b, n);
    return o->arg ? o->arg : "X";
}

static void usage(const char *cmd, const char *summary, const cli_opt *opts)
{
    char a[256];
    printf("usage: rlhf %s", cmd);
    for (const cli_opt *o = opts; o->name; o++) {
        const char *l = o->required ? "" : "[", *r = o->required ? "" : "]";
        if (o->type == OPT_FLAG)
            printf(" %s%s%s", l, o->name, r);
        else
            printf(" %s%s %s%s%s", l, o->name, arg_of(o, a, sizeof a), o->type == OPT_MULTI ? "..." : "", r);
    }
    printf("\n\n%s\n\noptions:\n", summary);
    for (const cli_opt *o = opts; o->name; o++) {
        char left[96], def[128];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->type == OPT_FLAG ? "" : " ",
                 o->type == OPT_FLAG ? "" : arg_of(o, a, sizeof a));
        printf("  %-28s %s", left, o->help);
        default_text(o, def, sizeof def);
        if (!o->required && def[0]) printf(" (default %s)", def);
        printf("\n");
    }
    printf("  %-28s %s\n", "--help", "show this help");
}

/* one value into an option's field; exits with one line when it does not parse */
static void set_value(const char *cmd, const cli_opt *o, const char *val)
{
    char *end;
    errno = 0;
    switch (o->type) {
    case OPT_STR: *(const char **)o->dst = val; return;
    case OPT_INT:
    case OPT_LONG: {
        const long v = strtol(val, &end, 10);
        if (errno || end == val || *end || (o->type == OPT_INT && (v < INT_MIN || v > INT_MAX)))
            cli_die(cmd, "option %s: '%s' is not an integer", o->name, val);
        if (o->type == OPT_INT) *(int *)o->dst = (int)v;
        else *(long *)o->dst = v;
        return;
    }
    case OPT_U64: {
        const unsigned long long v = strtoull(val, &end, 10);
        if (errno || end == val || *end || val[0] == '-')
            cli_die(cmd, "option %s: '%s' is not a non-negative integer", o->name, val);
        *(uint64_t *)o->dst = (uint64_t)v;
        return;
    }
    case OPT_FLOAT:
    case OPT_DOUBLE: {
        const double v = strtod(val, &end);
        if (errno || end == val || *end) cli_die(cmd, "option %s: '%s' is not a number", o->name, val);
        if (o->type == OPT_FLOAT) *(float *)o->dst = (float)v;
        else *(double *)o->dst = v;
        return;
    }
    case OPT_ENUM: {
        char a[256];
        const cli_enum *e = o->dst;
        for (int i = 0; e->names[i]; i++)
            if (strcmp(val, e->names[i]) == 0) {
                *e->value = i;
                return;
            }
        cli_die(cmd, "option %s: '%s' is not one of %s", o->name, val, choice_list(o, a, sizeof a));
    }
    case OPT_FLAG:
    case OPT_MULTI: return;
    }
}

void cli_parse(const char *cmd, const char *summary, int argc, char **argv, const cli_opt *opts)
{
    size_t nopts = 0;
    while (opts[nopts].name) nopts++;
    int *seen = calloc(nopts + 1, sizeof *seen);
    if (!seen) cli_die(cmd, "out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(cmd, summary, opts);
            exit(0);
        }
        const char *eq = strchr(a, '=');
        size_t nl = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = NULL;
        size_t k;
        for (k = 0; k < nopts; k++)
            if (strlen(opts[k].name) == nl && strncmp(opts[k].name, a, nl) == 0) {
                o = &opts[k];
                break;
            }
        if (!o) cli_die(cmd, "unknown option '%s' (see 'rlhf %s --help')", a, cmd);
        seen[k] = 1;
        if (o->type == OPT_FLAG) {
            if (eq) cli_die(cmd, "option %s takes no value", o->name);
            *(int *)o->dst = 1;
            continue;
        }
        char ab[256];
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) cli_die(cmd, "option %s needs a value (%s)", o->name, arg_of(o, ab, sizeof ab));
            val = argv[++i];
        }
        if (o->type != OPT_MULTI) {
            set_value(cmd, o, val);
            continue;
        }
        cli_list *l = o->dst;
        /* take this value and every following argument up to the next option */
        for (;;) {
            const char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
            if (!nv) cli_die(cmd, "out of memory");
            l->v = nv;
            l->v[l->n++] = val;
            if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                val = argv[++i];
            else
                break;
        }
    }
    for (size_t k2 = 0; k2 < nopts; k2++)
        if (opts[k2].required && !seen[k2])
            cli_die(cmd, "missing required option %s %s (see 'rlhf %s --help')", opts[k2].name,
                    opts[k2].arg ? opts[k2].arg : "", cmd);
    free(seen);
}

int cli_leading(int argc, char **argv, cli_list *l)
{
    int n = 0;
    while (n + 1 < argc && strncmp(argv[n + 1], "--", 2) != 0 && strcmp(argv[n + 1], "-h") != 0) {
        const char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
        if (!nv) {
            fprintf(stderr, "rlhf: out of memory\n");
            exit(1);
        }
        l->v = nv;
        l->v[l->n++] = argv[++n];
    }
    return n;
}

void cli_name_dir(const char *arg, char *name, size_t name_len, char *dir, size_t dir_len)
{
    const char *eq = strchr(arg, '='), *slash = strchr(arg, '/');
    const char *d = eq && (!slash || eq < slash) ? eq + 1 : arg;
    snprintf(dir, dir_len, "%s", d);
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') dir[--n] = 0;
    const char *base = strrchr(dir, '/');
    if (d != arg) snprintf(name, name_len, "%.*s", (int)(d - arg - 1), arg);
    else snprintf(name, name_len, "%s", base ? base + 1 : dir);
}

void cli_opts_add(cli_opt *opts, size_t *k, const cli_opt *more)
{
    for (; more->name; more++) {
        if (*k + 1 >= CLI_MAX_OPTS) {
            fprintf(stderr, "rlhf: too many options (CLI_MAX_OPTS)\n");
            exit(1);
        }
        opts[(*k)++] = *more;
    }
    opts[*k] = (cli_opt){0};
}

void cli_threads(int n)
{
    if (n > 0) omp_set_num_threads(n);
}

void cli_parse_ids(const char *cmd, const char *in, const char *text, size_t len, long long n_ids, tok_ids *out)
{
    const char *name = strcmp(in, "-") == 0 ? "<stdin>" : in;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < len;) {
        if (isspace((unsigned char)text[i])) {
            if (text[i] == '\n') line++, col = 1;
            else col++;
            i++;
            continue;
        }
        size_t j = i;
        long long v = 0;
        int ok = 1;
        while (j < len && !isspace((unsigned char)text[j])) {
            if (text[j] < '0' || text[j] > '9' || j - i > 9) ok = 0;
            else v = v * 10 + (text[j] - '0');
            j++;
        }
        if (!ok || v >= n_ids)
            cli_die(cmd, "%s:%zu:%zu: '%.*s' is not a token id (0..%lld)", name, line, col,
                    (int)(j - i > 40 ? 40 : j - i), text + i, n_ids - 1);
        if (tok_ids_push(out, (int32_t)v)) cli_die(cmd, "out of memory");
        col += j - i;
        i = j;
    }
}

/* ---- output ------------------------------------------------------------------------------------ */

void cli_out_init(cli_out *o, FILE *f)
{
    o->cap = 1 << 20;
    o->buf = malloc(o->cap);
    o->n = 0;
    o->f = f;
    if (!o->buf) {
        fprintf(stderr, "rlhf: out of memory\n");
        exit(1);
    }
}

static void out_flush(cli_out *o)
{
    if (o->n && fwrite(o->buf, 1, o->n, o->f) != o->n) {
        /* reported by cli_out_close through ferror */
    }
    o->n = 0;
}

void cli_out_bytes(cli_out *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) out_flush(o);
    if (n > o->cap) {
        fwrite(p, 1, n, o->f);
        return;
    }
    memcpy(o->buf + o->n, p, n);
    o->n += n;
}

void cli_out_int_line(cli_out *o, long long v)
{
    if (o->n + 24 > o->cap) out_flush(o);
    char tmp[24];
    int k = 0;
    unsigned long long u = v < 0 ? (unsigned long long)(-(v + 1)) + 1 : (unsigned long long)v;
    do {
        tmp[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[k++] = '-';
    while (k) o->buf[o->n++] = tmp[--k];
    o->buf[o->n++] = '\n';
}

int cli_out_close(cli_out *o)
{
    out_flush(o);
    free(o->buf);
    o->buf = NULL;
    return (fflush(o->f) != 0 || ferror(o->f)) ? -1 : 0;
}

/* ---- progress ---------------------------------------------------------------------------------- */

static void fmt_time(char *b, size_t n, double s)
{
    if (s < 0 || s > 1e7) {
        snprintf(b, n, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else
        snprintf(b, n, "%02ld:%02ld", t / 60, t % 60);
}

void cli_progress_start(cli_progress *p, const char *label)
{
    p->label = label;
    p->t0 = clk_now();
    p->last = -1;
    p->tty = isatty(fileno(stderr));
    p->last_pct = -1;
}

void cli_progress_update(cli_progress *p, double done, double total, const char *extra)
{
    double now = clk_now();
    double frac = total > 0 ? done / total : 0;
    if (frac > 1) frac = 1;
    int pct = (int)(frac * 100);
    if (p->tty) {
        if (now - p->last < 0.1 && frac < 1) return;
    } else {
        /* plain log: a line every 10% */
        if (pct / 10 == p->last_pct / 10 && p->last_pct >= 0) return;
    }
    p->last = now;
    p->last_pct = pct;
    double el = now - p->t0;
    double eta = frac > 0 ? el * (1 - frac) / frac : -1;
    char e1[32], e2[32];
    fmt_time(e1, sizeof e1, el);
    fmt_time(e2, sizeof e2, eta);
    const int width = 30;
    char bar[64];
    int fill = (int)(frac * width);
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "%s%-10s [%s] %3d%% %s<%s %s%s", p->tty ? "\r" : "", p->label, bar, pct, e1, e2,
            extra ? extra : "", p->tty ? "\033[K" : "\n");
    fflush(stderr);
}

void cli_progress_done(cli_progress *p, const char *extra)
{
    char e1[32];
    fmt_time(e1, sizeof e1, clk_now() - p->t0);
    fprintf(stderr, "%s%-10s done in %s %s%s\n", p->tty ? "\r" : "", p->label, e1, extra ? extra : "",
            p->tty ? "\033[K" : "");
}
