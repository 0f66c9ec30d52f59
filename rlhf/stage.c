/* stage.c — the caching runner of pipeline stages (see stage.h): settings hash -> skip, or run into
 * OUT/.<stage>.tmp/, prune checkpoints, write stage.json last and rename the folder into place;
 * progress events; errors that name the stage. It lives apart from the demo's stages so that each
 * stage reads as what it computes, and the rule that makes a rerun safe is written once. */
#include "stage.h"

#include "clock.h"
#include "corpus.h"
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PATHN 4096

static void emit(const stage_runner *r, stage_event_kind k, double done, double total, double seconds, const char *text)
{
    if (!r->on_event) return;
    stage_event e = {k, r->stage, done, total, seconds, text};
    r->on_event(r->ud, &e);
}

void stage_progress(const stage_runner *r, double done, double total, const char *text)
{
    emit(r, STAGE_PROGRESS, done, total, 0, text);
}

void stage_part(stage_runner *r, double base, double total, const char *text)
{
    r->part_base = base;
    r->part_total = total;
    r->part_text = text;
}

void stage_on_trainer_step(void *runner, const trainer_progress *p)
{
    static const char *const show[] = {"loss", "objective/scores", "objective/kl", "eval_accuracy", "rewards/accuracies"};
    char text[160];
    size_t n = 0;
    text[0] = 0;
    for (size_t i = 0; i < sizeof show / sizeof *show && n < sizeof text; i++) {
        double v = trainer_progress_get(p, show[i]);
        if (!isnan(v)) n += (size_t)snprintf(text + n, sizeof text - n, "%s%s %.4g", n ? " " : "", show[i], v);
    }
    stage_progress(runner, (double)p->step, (double)p->total, text);
}

void stage_on_eval_batch(void *runner, long done, long total)
{
    const stage_runner *r = runner;
    stage_progress(r, r->part_base + (double)done, r->part_total > 0 ? r->part_total : (double)total,
                   r->part_text ? r->part_text : "");
}

/* "key value, key value" of a stage summary (numbers and strings), for the one-line event text; n >= 1 */
static void summary_text(const json_t *s, char *buf, size_t n)
{
    const char *k;
    json_t *v;
    size_t o = 0;
    buf[0] = 0;
    json_object_foreach((json_t *)s, k, v)
    {
        if (o >= n) break;
        if (json_is_integer(v)) o += (size_t)snprintf(buf + o, n - o, "%s%s %lld", o ? ", " : "", k, (long long)json_integer_value(v));
        else if (json_is_real(v)) o += (size_t)snprintf(buf + o, n - o, "%s%s %.4g", o ? ", " : "", k, json_real_value(v));
        else if (json_is_string(v)) o += (size_t)snprintf(buf + o, n - o, "%s%s %s", o ? ", " : "", k, json_string_value(v));
    }
    /* keys and strings come from a file: control characters would break the one line */
    for (char *p = buf; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F) *p = ' ';
}

/* a finished trainer keeps its final model and metrics; its resumable checkpoints (step-N/, latest) go */
static int prune_checkpoints(const char *dir, char *err, size_t errlen)
{
    DIR *dd = opendir(dir);
    if (!dd) return fio_fail(err, errlen, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    char p[PATHN];
    int rc = 0;
    while (rc == 0 && (e = readdir(dd)))
        if (strncmp(e->d_name, "step-", 5) == 0) rc = fio_remove_tree(fio_join(p, sizeof p, dir, e->d_name), err, errlen);
    closedir(dd);
    unlink(fio_join(p, sizeof p, dir, "latest"));
    return rc;
}

/* FNV-1a-64 of the settings as canonical JSON (sorted keys, doubles to 17 digits) */
static int settings_hash(const json_t *settings, char hash[STAGE_HASH_LEN], char *err, size_t errlen)
{
    char *canon = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    if (!canon) return fio_fail(err, errlen, "out of memory");
    snprintf(hash, STAGE_HASH_LEN, "%016llx", (unsigned long long)corpus_hash(canon, strlen(canon)));
    free(canon);
    return 0;
}

int stage_record_match(const char *json, size_t len, const char *hash, double *seconds, char *text, size_t n)
{
    json_t *old = json_loadb(json, len, 0, NULL);
    const char *h = json_string_value(json_object_get(old, "hash"));
    const int same = h && strcmp(h, hash) == 0;
    if (same) {
        summary_text(json_object_get(old, "summary"), text, n);
        *seconds = json_number_value(json_object_get(old, "seconds"));
    }
    json_decref(old);
    return same;
}

/* 1 (and a STAGE_CACHED event) when dir/stage.json records the same hash */
static int cached(const stage_runner *r, const char *dir, const char *hash)
{
    char marker[PATHN], text[512];
    fio_join(marker, sizeof marker, dir, "stage.json");
    size_t len;
    char *json = fio_exists(marker) ? fio_read_all(marker, &len, text, sizeof text) : NULL;
    double secs = 0;
    const int same = json && stage_record_match(json, len, hash, &secs, text, sizeof text);
    free(json);
    if (same) emit(r, STAGE_CACHED, 0, 0, secs, text);
    return same;
}

/* CPU seconds (user + system) of the process so far, all threads */
static double cpu_now(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return NAN;
    return (double)u.ru_utime.tv_sec + 1e-6 * (double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_sec +
           1e-6 * (double)u.ru_stime.tv_usec;
}

/* tmp holds the stage's outputs: prune them, write stage.json last, move the folder to dir */
static int finish(const stage_runner *r, const char *tmp, const char *dir, const json_t *settings, const char *hash,
                  json_t *summary, double secs, double cpu, char *err, size_t errlen)
{
    char marker[PATHN];
    if (prune_checkpoints(tmp, err, errlen)) return -1;
    json_t *m = json_pack("{s:s, s:s, s:O, s:O, s:f, s:f}", "stage", r->stage, "hash", hash, "settings", settings,
                          "summary", summary, "seconds", secs, "cpu_seconds", cpu);
    char *s = m ? json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(m);
    int rc = s ? fio_write_atomic(fio_join(marker, sizeof marker, tmp, "stage.json"), s, strlen(s), err, errlen)
               : fio_fail(err, errlen, "out of memory");
    free(s);
    if (rc == 0) rc = fio_remove_tree(dir, err, errlen);
    if (rc == 0 && rename(tmp, dir) != 0) rc = fio_fail(err, errlen, "%s: cannot rename to %s: %s", tmp, dir, strerror(errno));
    return rc;
}

/* run fn into a fresh OUT/.<stage>.tmp and move it into place */
static int run_fresh(const stage_runner *r, const char *dir, const json_t *settings, const char *hash, stage_fn fn,
                     void *arg, char *err, size_t errlen)
{
    char tname[PATHN], tmp[PATHN], text[512];
    snprintf(tname, sizeof tname, ".%s.tmp", r->stage);
    fio_join(tmp, sizeof tmp, r->out, tname);
    const int lead = dp_rank(r->dp) == 0, runs = lead || r->collective;
    if (lead && (fio_remove_tree(tmp, err, errlen) || fio_mkdirs(tmp, err, errlen))) return -1;
    if (dp_barrier(r->dp, err, errlen)) return -1;
    emit(r, STAGE_BEGIN, 0, 0, 0, "");
    const double t0 = clk_now(), c0 = cpu_now();
    json_t *summary = json_object();
    int rc = !summary ? fio_fail(err, errlen, "out of memory") : runs ? fn(arg, tmp, summary, err, errlen) : 0;
    const double secs = clk_now() - t0, cpu = cpu_now() - c0;
    /* every rank is done with the folder before rank 0 moves it, and sees it moved before it goes on */
    if (rc == 0) rc = dp_barrier(r->dp, err, errlen);
    if (rc == 0 && lead) rc = finish(r, tmp, dir, settings, hash, summary, secs, cpu, err, errlen);
    if (rc == 0) rc = dp_barrier(r->dp, err, errlen);
    if (rc == 0) {
        summary_text(summary, text, sizeof text);
        emit(r, STAGE_END, 0, 0, secs, text);
    }
    json_decref(summary);
    return rc;
}

int stage_run(stage_runner *r, const char *name, json_t *settings, stage_fn fn, void *arg, char hash[STAGE_HASH_LEN],
              char *err, size_t errlen)
{
    r->stage = name;
    stage_part(r, 0, 0, NULL);
    char dir[PATHN];
    fio_join(dir, sizeof dir, r->out, name);
    int rc = settings ? settings_hash(settings, hash, err, errlen) : fio_fail(err, errlen, "out of memory");
    if (rc == 0 && !cached(r, dir, hash)) rc = run_fresh(r, dir, settings, hash, fn, arg, err, errlen);
    json_decref(settings);
    if (rc != 0 && strncmp(err, name, strlen(name)) != 0) {
        /* name the stage in the error */
        char e2[1024];
        snprintf(e2, sizeof e2, "%s", err);
        fio_fail(err, errlen, "%s: %s", name, e2);
    }
    return rc;
}
