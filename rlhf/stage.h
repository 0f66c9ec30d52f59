/* stage.h — a cached pipeline stage: run a function into its own folder unless an identical run is
 * already there. The demo (rlhf/demo.c) is a table of stages over this runner; the runner knows
 * nothing of what a stage computes.
 *
 * A stage is a pure function of its settings (a JSON object the caller builds: the options it reads
 * and the hashes of the stages it reads from). Its hash is FNV-1a-64 of the settings as canonical
 * JSON (sorted keys). stage_run(r, "sft", settings, fn, arg, hash, ...):
 *   - OUT/sft/stage.json holds the same hash: the stage is skipped (a STAGE_CACHED event);
 *   - otherwise fn(arg, "OUT/.sft.tmp", summary, ...) runs into a fresh OUT/.sft.tmp/, the trainers'
 *     resumable checkpoints (step-N/, latest) are pruned, stage.json
 *     ({"stage","hash","settings","summary","seconds","cpu_seconds"}: wall time, and the CPU time of
 *     every thread of the process, which a shared machine inflates less) is written last, and the folder is renamed to
 *     OUT/sft — so a stage folder is either complete or absent;
 *   - an error names the stage ("sft: ...").
 *
 *     stage_runner r = {.out = "out/demo", .on_event = show, .ud = ui};
 *     char h[STAGE_HASH_LEN];
 *     json_t *s = json_pack("{s:i, s:f}", "steps", 150, "lr", 5e-4);
 *     if (stage_run(&r, "sft", s, run_sft, &ctx, h, err, sizeof err)) ...   (s is consumed)
 *
 * While fn runs, its progress reaches r->on_event as STAGE_PROGRESS: directly (stage_progress), from
 * a trainer (trainer_run.on_step = stage_on_trainer_step, .ud = &r) or from eval_run batches
 * (eval_opts.on_batch = stage_on_eval_batch, .ud = &r; stage_part says which part of the stage a
 * sampling call is). */
#ifndef RLHF_STAGE_H
#define RLHF_STAGE_H

#include "trainer.h"

#include <jansson.h>
#include <stddef.h>

#define STAGE_HASH_LEN 17 /* 16 hex digits and a NUL */

typedef enum {
    STAGE_BEGIN,    /* a stage starts (it was not cached) */
    STAGE_PROGRESS, /* done / total within the stage; text: a few metrics */
    STAGE_END,      /* the stage finished: seconds, text = a one-line summary */
    STAGE_CACHED    /* the stage was complete already: seconds it took then, text = its summary */
} stage_event_kind;

typedef struct {
    stage_event_kind kind;
    const char *stage;
    double done, total;
    double seconds;
    const char *text;
} stage_event;

typedef struct {
    const char *out;             /* the folder holding one subfolder per stage */
    void (*on_event)(void *ud, const stage_event *e); /* may be NULL */
    void *ud;
    /* data parallel (rlhf/dp.h; NULL: one process): every rank calls stage_run alike; rank 0 alone
     * makes and moves the folder and writes stage.json; the stage's fn runs on every rank when
     * `collective` is set when stage_run is called (a trainer: rank 0 writes), on rank 0 alone
     * otherwise; every rank leaves stage_run once the folder is in place */
    dp *dp;
    int collective;
    /* set by stage_run and stage_part: the stage running now and the part of it being sampled */
    const char *stage;
    double part_base, part_total;
    const char *part_text;
} stage_runner;

/* A stage's work: write its outputs into dir and a few numbers into summary (shown in events and
 * kept in stage.json). 0, or -1 and one line in err. */
typedef int (*stage_fn)(void *arg, const char *dir, json_t *summary, char *err, size_t errlen);

/* Run stage `name` into r->out/name unless it is complete with the same settings (consumed). hash
 * gets the settings' hash (what later stages put in their own settings). 0, or -1 and one line in
 * err starting with the stage's name. */
int stage_run(stage_runner *r, const char *name, json_t *settings, stage_fn fn, void *arg, char hash[STAGE_HASH_LEN],
              char *err, size_t errlen);

/* Whether the text of a stage.json (len bytes) records the settings hash `hash`: 1, with the
 * seconds the stage took and its summary as one line ("key value, key value") in text (n bytes);
 * 0 when it records another hash or is no stage record at all (then the stage runs again). */
int stage_record_match(const char *json, size_t len, const char *hash, double *seconds, char *text, size_t n);

/* a STAGE_PROGRESS event of the running stage */
void stage_progress(const stage_runner *r, double done, double total, const char *text);

/* The next sampling calls report done + base out of total (total <= 0: the call's own), with text:
 * a stage made of several eval_run calls shows one progress bar. stage_run resets it. */
void stage_part(stage_runner *r, double base, double total, const char *text);

/* trainer_run.on_step (ud: the runner): the step and a few of its metrics */
void stage_on_trainer_step(void *runner, const trainer_progress *p);

/* eval_opts.on_batch (ud: the runner): the samples done, shifted by stage_part */
void stage_on_eval_batch(void *runner, long done, long total);

#endif
