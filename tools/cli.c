/* cli.c — option parsing, error lines, fast output and the progress bar for `rlhf`. See cli.h. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Noreturn void cli_die(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "rlhf %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(const char *cmd, const char *summary, const cli_opt *opts)
{
    printf("usage: rlhf %s", cmd);
    for (const cli_opt *o = opts; o->name; o++) {
        const char *l = o->required ? "" : "[", *r = o->required ? "" : "]";
        if (o->type == OPT_FLAG)
            printf(" %s%s%s", l, o->name, r);
        else
            printf(" %s%s %s%s%s", l, o->name, o->arg ? o->arg : "X", o->type == OPT_MULTI ? "..." : "", r);
    }
    printf("\n\n%s\n\noptions:\n", summary);
    for (const cli_opt *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->type == OPT_FLAG ? "" : " ",
                 o->type == OPT_FLAG ? "" : (o->arg ? o->arg : "X"));
        printf("  %-24s %s", left, o->help);
        if (o->type == OPT_INT && !o->required) printf(" (default %ld)", *(long *)o->dst);
        if (o->type == OPT_DOUBLE && !o->required) printf(" (default %g)", *(double *)o->dst);
        if (o->type == OPT_STR && !o->required && *(const char **)o->dst)
            printf(" (default %s)", *(const char **)o->dst);
        printf("\n");
    }
    printf("  %-24s %s\n", "--help", "show this help");
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
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) cli_die(cmd, "option %s needs a value (%s)", o->name, o->arg ? o->arg : "X");
            val = argv[++i];
        }
        char *end;
        switch (o->type) {
        case OPT_STR: *(const char **)o->dst = val; break;
        case OPT_INT:
            errno = 0;
            *(long *)o->dst = strtol(val, &end, 10);
            if (errno || end == val || *end) cli_die(cmd, "option %s: '%s' is not an integer", o->name, val);
            break;
        case OPT_DOUBLE:
            errno = 0;
            *(double *)o->dst = strtod(val, &end);
            if (errno || end == val || *end) cli_die(cmd, "option %s: '%s' is not a number", o->name, val);
            break;
        case OPT_MULTI: {
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
            break;
        }
        case OPT_FLAG: break;
        }
    }
    for (size_t k2 = 0; k2 < nopts; k2++)
        if (opts[k2].required && !seen[k2])
            cli_die(cmd, "missing required option %s %s (see 'rlhf %s --help')", opts[k2].name,
                    opts[k2].arg ? opts[k2].arg : "", cmd);
    free(seen);
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

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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
    p->t0 = cli_now();
    p->last = -1;
    p->tty = isatty(fileno(stderr));
    p->last_pct = -1;
}

void cli_progress_update(cli_progress *p, double done, double total, const char *extra)
{
    double now = cli_now();
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
    fmt_time(e1, sizeof e1, cli_now() - p->t0);
    fprintf(stderr, "%s%-10s done in %s %s%s\n", p->tty ? "\r" : "", p->label, e1, extra ? extra : "",
            p->tty ? "\033[K" : "");
}
