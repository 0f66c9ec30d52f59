/* reward_cmd.c — an external reward program as a scorer: started once, fed JSON lines on its
 * standard input, read one number per line from its standard output, batch by batch, with a
 * timeout; any failure becomes one line naming the program and the record. See reward.h. */
#include "reward.h"

#include "clock.h"
#include "fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct reward_cmd {
    pid_t pid;               /* 0 once reaped */
    int in, out, errfd;      /* our ends of its stdin (a socket: send() without SIGPIPE), stdout, stderr */
    char label[160];         /* "'python3 score.py'" for messages */
    const tok_tokenizer *t;
    int32_t stop;
    double timeout;
    tok_bytes req, got, text; /* the batch's records, unparsed output, decoding scratch */
    char tail[256];          /* the last bytes of its stderr */
    size_t ntail;
    long batches, records;   /* sent so far */
    char failed[1024];       /* non-empty after a failure: repeated for every later batch */
};

/* ---- starting and stopping ------------------------------------------------------------------- */

static int nonblock(int fd) { return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static void set_label(reward_cmd *c, char *const *argv)
{
    size_t k = (size_t)snprintf(c->label, sizeof c->label, "'");
    for (int i = 0; argv[i] && k < sizeof c->label - 8; i++)
        k += (size_t)snprintf(c->label + k, sizeof c->label - k, "%s%s", i ? " " : "", argv[i]);
    if (k > sizeof c->label - 8) k = sizeof c->label - 8;
    snprintf(c->label + k, sizeof c->label - k, "'");
}

/* spawn argv with its stdin, stdout and stderr on fds[0..2] (the child's ends) */
static int spawn(reward_cmd *c, char *const *argv, const int fds[3], char *err, size_t errlen)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGINT);
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    for (int i = 0; i < 3; i++) posix_spawn_file_actions_adddup2(&fa, fds[i], i);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    const int rc = posix_spawnp(&c->pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (rc) {
        c->pid = 0;
        return fio_fail(err, errlen, "reward program %s: cannot start it: %s", c->label, strerror(rc));
    }
    return 0;
}

int reward_cmd_start(reward_cmd **out, char *const *argv, const tok_tokenizer *t, int32_t stop, double timeout_s,
                     char *err, size_t errlen)
{
    *out = NULL;
    if (!argv || !argv[0]) return fio_fail(err, errlen, "reward program: none given");
    if (!(timeout_s > 0)) return fio_fail(err, errlen, "reward program: the timeout must be positive");
    reward_cmd *c = calloc(1, sizeof *c);
    if (!c) return fio_fail(err, errlen, "out of memory");
    c->t = t;
    c->stop = stop;
    c->timeout = timeout_s;
    set_label(c, argv);
    int sv[2] = {-1, -1}, po[2] = {-1, -1}, pe[2] = {-1, -1};
    int rc = socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)
                 ? fio_fail(err, errlen, "reward program %s: %s", c->label, strerror(errno))
                 : 0;
    if (rc == 0) rc = spawn(c, argv, (const int[3]){sv[1], po[1], pe[1]}, err, errlen);
    const int keep[3] = {sv[0], po[0], pe[0]}, drop[3] = {sv[1], po[1], pe[1]};
    for (int i = 0; i < 3; i++)
        if (drop[i] >= 0) close(drop[i]);
    c->in = keep[0], c->out = keep[1], c->errfd = keep[2];
    if (rc == 0 && (nonblock(c->in) || nonblock(c->out) || nonblock(c->errfd)))
        rc = fio_fail(err, errlen, "reward program %s: %s", c->label, strerror(errno));
    if (rc) {
        reward_cmd_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* wait up to wait_s for the program to exit, then kill its process group; describe how it ended */
static void reap(reward_cmd *c, double wait_s, char *how, size_t n)
{
    snprintf(how, n, "stopped");
    if (c->pid <= 0) return;
    int st = 0;
    pid_t w = 0;
    for (const double t0 = clk_now(); (w = waitpid(c->pid, &st, WNOHANG)) == 0 && clk_now() - t0 < wait_s;)
        nanosleep(&(struct timespec){0, 5000000}, NULL);
    if (w == 0) {
        kill(-c->pid, SIGKILL);
        w = waitpid(c->pid, &st, 0);
    } else {
        kill(-c->pid, SIGKILL); /* whatever it started and left behind */
    }
    if (w == c->pid && WIFEXITED(st)) snprintf(how, n, "exited with status %d", WEXITSTATUS(st));
    else if (w == c->pid && WIFSIGNALED(st)) snprintf(how, n, "was killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    c->pid = 0;
}

void reward_cmd_free(reward_cmd *c)
{
    if (!c) return;
    if (c->in >= 0) close(c->in); /* EOF: a well-behaved program exits now */
    char how[128];
    reap(c, 1.0, how, sizeof how);
    if (c->out >= 0) close(c->out);
    if (c->errfd >= 0) close(c->errfd);
    tok_bytes_free(&c->req);
    tok_bytes_free(&c->got);
    tok_bytes_free(&c->text);
    free(c);
}

/* ---- records ------------------------------------------------------------------------------------ */

/* s[0..n) as the body of a JSON string */
static int json_escape(tok_bytes *b, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t ch = s[i];
        char e[8];
        int k = 0;
        if (ch == '"' || ch == '\\') k = snprintf(e, sizeof e, "\\%c", ch);
        else if (ch == '\n') k = snprintf(e, sizeof e, "\\n");
        else if (ch < 0x20 || ch == 0x7f) k = snprintf(e, sizeof e, "\\u%04x", ch);
        if (k ? tok_bytes_append(b, e, (size_t)k) : tok_bytes_append(b, &ch, 1)) return -1;
    }
    return 0;
}

/* append {"prompt": ..., "completion": ...}\n of row b */
static int add_record(reward_cmd *c, const int32_t *tokens, const int *lengths, const int *plens, int b, int T,
                      char *err, size_t errlen)
{
    const int32_t *comp;
    const int nc = scorer_completion(tokens, lengths, plens, b, T, c->stop, &comp);
    c->text.n = 0;
    if (tok_decode_lenient(c->t, tokens + (size_t)b * T, (size_t)plens[b], &c->text, err, errlen)) return -1;
    const size_t np = c->text.n;
    if (tok_decode_lenient(c->t, comp, (size_t)nc, &c->text, err, errlen)) return -1;
    static const char k1[] = "{\"prompt\": \"", k2[] = "\", \"completion\": \"", k3[] = "\"}\n";
    if (tok_bytes_append(&c->req, k1, sizeof k1 - 1) || json_escape(&c->req, c->text.data, np) ||
        tok_bytes_append(&c->req, k2, sizeof k2 - 1) || json_escape(&c->req, c->text.data + np, c->text.n - np) ||
        tok_bytes_append(&c->req, k3, sizeof k3 - 1))
        return fio_fail(err, errlen, "out of memory");
    return 0;
}

/* up to 40 bytes of s as a one-line quotation (control characters as spaces, cut at a character) */
static void quote(char *o, size_t n, const uint8_t *s, size_t len)
{
    size_t k = len > 40 ? 40 : len;
    while (k < len && k > 0 && (s[k] & 0xC0) == 0x80) k--;
    size_t j = 0;
    o[j++] = '"';
    for (size_t i = 0; i < k && j + 5 < n; i++) o[j++] = s[i] < 0x20 || s[i] == 0x7f ? ' ' : (char)s[i];
    snprintf(o + j, n - j, "%s\"", k < len ? "..." : "");
}

/* "record N (row b of batch k: prompt "...", completion "...")" */
static void describe(reward_cmd *c, const int32_t *tokens, const int *lengths, const int *plens, int b, int T, char *o,
                     size_t n)
{
    const int32_t *comp;
    const int nc = scorer_completion(tokens, lengths, plens, b, T, c->stop, &comp);
    char e[8], qp[64], qc[64];
    c->text.n = 0;
    tok_decode_lenient(c->t, tokens + (size_t)b * T, (size_t)plens[b], &c->text, e, sizeof e);
    const size_t np = c->text.n;
    tok_decode_lenient(c->t, comp, (size_t)nc, &c->text, e, sizeof e);
    quote(qp, sizeof qp, c->text.data, np);
    quote(qc, sizeof qc, c->text.data + np, c->text.n - np);
    snprintf(o, n, "record %ld (row %d of batch %ld: prompt %s, completion %s)", c->records + b + 1,
             b, c->batches, qp, qc);
}

/* the last non-empty line of its stderr, as "; its last words: ..." (or "") */
static void last_words(const reward_cmd *c, char *o, size_t n)
{
    size_t e = c->ntail;
    while (e > 0 && (c->tail[e - 1] == '\n' || c->tail[e - 1] == '\r' || c->tail[e - 1] == ' ')) e--;
    size_t s = e;
    while (s > 0 && c->tail[s - 1] != '\n') s--;
    if (e == s) {
        o[0] = 0;
        return;
    }
    char q[64];
    quote(q, sizeof q, (const uint8_t *)c->tail + s, e - s);
    snprintf(o, n, "; its stderr ends: %s", q);
}

/* ---- one batch --------------------------------------------------------------------------------- */

enum { IO_OK, IO_EXITED, IO_TIMEOUT, IO_ERROR };

/* keep the last bytes of its stderr */
static void drain_stderr(reward_cmd *c)
{
    char b[512];
    ssize_t k;
    while (c->errfd >= 0 && (k = read(c->errfd, b, sizeof b)) != 0) {
        if (k < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) close(c->errfd), c->errfd = -1;
            return;
        }
        const size_t cap = sizeof c->tail, kk = (size_t)k > cap ? cap : (size_t)k;
        if (c->ntail + kk > cap) {
            memmove(c->tail, c->tail + (c->ntail + kk - cap), cap - kk);
            c->ntail = cap - kk;
        }
        memcpy(c->tail + c->ntail, b + (size_t)k - kk, kk);
        c->ntail += kk;
    }
    if (c->errfd >= 0) close(c->errfd), c->errfd = -1; /* EOF */
}

/* one round of poll: send what fits, read what came. IO_OK, or how it failed. */
static int io_round(reward_cmd *c, size_t *sent, double deadline)
{
    struct pollfd pf[3];
    int n = 0, iw = -1, ie = -1;
    if (c->in >= 0 && *sent < c->req.n) iw = n, pf[n++] = (struct pollfd){c->in, POLLOUT, 0};
    const int io = n;
    pf[n++] = (struct pollfd){c->out, POLLIN, 0};
    if (c->errfd >= 0) ie = n, pf[n++] = (struct pollfd){c->errfd, POLLIN, 0};
    const double left = deadline - clk_now();
    if (left <= 0) return IO_TIMEOUT;
    const int r = poll(pf, (nfds_t)n, (int)(left * 1000) + 1);
    if (r < 0) return errno == EINTR ? IO_OK : IO_ERROR;
    if (iw >= 0 && pf[iw].revents) {
        const ssize_t k = send(c->in, c->req.data + *sent, c->req.n - *sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) *sent += (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EINTR) close(c->in), c->in = -1; /* it stopped reading */
    }
    if (ie >= 0 && pf[ie].revents) drain_stderr(c);
    if (!pf[io].revents) return IO_OK;
    uint8_t b[4096];
    const ssize_t k = read(c->out, b, sizeof b);
    if (k == 0) return IO_EXITED;
    if (k < 0) return errno == EAGAIN || errno == EINTR ? IO_OK : IO_ERROR;
    return tok_bytes_append(&c->got, b, (size_t)k) ? IO_ERROR : IO_OK;
}

int reward_cmd_parse_lines(const uint8_t *buf, size_t len, float *scores, int B, int *have, size_t *used, char *bad,
                           size_t nbad)
{
    size_t at = 0;
    *used = 0;
    while (at < len) {
        const uint8_t *s = buf + at, *nl = memchr(s, '\n', len - at);
        if (!nl) break;
        const size_t n = (size_t)(nl - s);
        char line[128];
        const size_t l = n < sizeof line - 1 ? n : sizeof line - 1;
        memcpy(line, s, l);
        line[l] = 0;
        at += n + 1;
        char *end;
        const double v = strtod(line, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r') end++;
        /* a NUL would end the line early for strtod; a double beyond FLT_MAX is no float */
        if (*have >= B || end == line || *end || n >= sizeof line - 1 || memchr(s, 0, n) || !(fabs(v) <= FLT_MAX)) {
            quote(bad, nbad, s, n);
            return -1;
        }
        scores[(*have)++] = (float)v;
        *used = at;
    }
    return 0;
}

/* parse complete lines of c->got into scores[*have..B) and drop them from c->got */
static int take_lines(reward_cmd *c, float *scores, int B, int *have, char *bad, size_t nbad)
{
    size_t used;
    const int rc = reward_cmd_parse_lines(c->got.data, c->got.n, scores, B, have, &used, bad, nbad);
    if (used) memmove(c->got.data, c->got.data + used, c->got.n - used);
    c->got.n -= used;
    return rc;
}

static int cmd_rows(void *ud, const int32_t *tokens, const int *lengths, const int *plens, int B, int T, float *scores,
                    char *err, size_t errlen)
{
    reward_cmd *c = ud;
    if (c->failed[0]) return fio_fail(err, errlen, "%s", c->failed);
    c->req.n = 0;
    c->batches++;
    for (int b = 0; b < B; b++)
        if (add_record(c, tokens, lengths, plens, b, T, err, errlen)) return -1;
    size_t sent = 0;
    int have = 0, io = IO_OK;
    char bad[64] = "", rec[256], how[128] = "", words[96];
    const double deadline = clk_now() + c->timeout;
    while (have < B && io == IO_OK) {
        io = io_round(c, &sent, deadline);
        if (take_lines(c, scores, B, &have, bad, sizeof bad)) break;
    }
    if (have == B && !bad[0] && c->got.n == 0) {
        c->records += B;
        return 0;
    }
    const int b = have < B ? have : B - 1;
    describe(c, tokens, lengths, plens, b, T, rec, sizeof rec);
    if (!bad[0] && have == B) quote(bad, sizeof bad, c->got.data, c->got.n);
    if (bad[0] || io == IO_OK) {
        snprintf(c->failed, sizeof c->failed, "reward program %s wrote %s for %s: expected one finite number per line, one line per record",
                 c->label, bad, rec);
        reap(c, 0, how, sizeof how);
    } else {
        reap(c, io == IO_TIMEOUT ? 0 : 1.0, how, sizeof how);
        last_words(c, words, sizeof words);
        if (io == IO_TIMEOUT)
            snprintf(c->failed, sizeof c->failed, "reward program %s gave no answer within %g s for %s and was killed%s",
                     c->label, c->timeout, rec, words);
        else
            snprintf(c->failed, sizeof c->failed, "reward program %s %s before answering %s%s", c->label,
                     io == IO_EXITED ? how : "failed", rec, words);
    }
    return fio_fail(err, errlen, "%s", c->failed);
}

scorer reward_cmd_scorer(reward_cmd *c) { return (scorer){cmd_rows, c}; }
