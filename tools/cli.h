/* cli.h — what every `rlhf` subcommand shares: a declarative option parser that also prints
 * `--help`, the one-line error convention (prefix "rlhf <cmd>: ", exit status 1), a fast writer
 * for numbers on standard output, and the progress bar with ETA.
 * Only tools/ prints or exits; the library returns errors as text. */
#ifndef RLHF_CLI_H
#define RLHF_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clock.h"
#include "tok.h"

/* The option table: each option is bound straight to a field of the command's options struct, typed
 * as the field is, so no command copies values by hand and --help prints every default from the
 * struct itself (the values the fields hold when cli_parse runs). */
typedef enum {
    OPT_STR,    /* const char ** */
    OPT_INT,    /* int * */
    OPT_LONG,   /* long * */
    OPT_U64,    /* uint64_t * */
    OPT_FLOAT,  /* float * */
    OPT_DOUBLE, /* double * */
    OPT_FLAG,   /* int *: set to 1 when given */
    OPT_ENUM,   /* cli_enum *: the index of the value in its names */
    OPT_MULTI   /* cli_list *: every argument up to the next option */
} cli_opt_type;

typedef struct {
    const char *name;    /* "--in" */
    cli_opt_type type;
    void *dst;           /* see cli_opt_type */
    const char *arg;     /* "FILE" (shown in help) */
    const char *help;
    int required;
} cli_opt;

/* an OPT_ENUM's field and its names (NULL-terminated; the field holds the index) */
typedef struct {
    int *value;
    const char *const *names;
} cli_enum;

/* room for a command's own options plus the shared training ones */
#define CLI_MAX_OPTS 96

typedef struct {
    const char **v;
    size_t n;
} cli_list;

typedef struct {
    const char *name;    /* "tokenize" */
    const char *usage;   /* "--tokenizer DIR [--in FILE]" */
    const char *summary; /* one line */
    int (*run)(int argc, char **argv);
} cli_command;

/* Parse argv[1..] against opts (terminated by an entry with name NULL); prints usage for --help and
 * exits 0; on error prints one line and exits 1. cmd is the full command name ("tokenizer train"). */
void cli_parse(const char *cmd, const char *summary, int argc, char **argv, const cli_opt *opts);

/* The arguments before the first option (`rlhf compare RUN_DIR... --out DIR`), appended to l; returns
 * their count n, so that cli_parse(cmd, summary, argc - n, argv + n, opts) parses the rest. */
int cli_leading(int argc, char **argv, cli_list *l);

/* A run argument NAME=DIR, or DIR named by its last component (trailing slashes dropped). */
void cli_name_dir(const char *arg, char *name, size_t name_len, char *dir, size_t dir_len);

/* Append the options of a table (terminated by a NULL name) to opts at *k (at most CLI_MAX_OPTS). */
void cli_opts_add(cli_opt *opts, size_t *k, const cli_opt *more);

/* Set OpenMP's thread count for the whole process, once, from a command's --threads (<= 0: leave
 * OpenMP's default). The library never sets it: every model and loop takes its count explicitly. */
void cli_threads(int n);

/* A model path option as users give it (a model or checkpoint folder, a run's output folder, its
 * `latest` pointer: ckpt_resolve in model/checkpoint.h) -> the folder to load, in place; when that
 * is not the path given, one line on stderr says so ("rlhf sample: --model out/sft: using
 * out/sft/model"). *path NULL: nothing. A path that resolves to nothing is one error line, exit 1.
 * cli_tokenizer_path: the same for a tokenizer folder, which is kept as given when it is no model
 * (a plain vocab.json + merges.txt folder). */
void cli_model_path(const char *cmd, const char *opt, const char **path);
void cli_tokenizer_path(const char *cmd, const char *opt, const char **path);

/* Under mpirun (rlhf/dp.h): start MPI once from main (ranks above 0 then print nothing but their
 * error line), the ranks for trainer_run.dp (NULL: one process), finalize at the end. */
typedef struct dp dp;
void cli_dp_start(int *argc, char ***argv);
dp *cli_dp(void);
void cli_dp_end(void);

/* Print "rlhf <cmd>: <message>" to stderr and exit(1); under mpirun every rank ends (MPI_Abort). */
_Noreturn void cli_die(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse whitespace-separated decimal token ids from text (read from `in`, "-" meaning standard
 * input) into out; anything that is not an id below n_ids is a one-line error
 * "<file>:<line>:<col>: 'x' is not a token id" and exit(1). */
void cli_parse_ids(const char *cmd, const char *in, const char *text, size_t len, long long n_ids, tok_ids *out);

/* Buffered writer for standard output. */
typedef struct {
    char *buf;
    size_t n, cap;
    FILE *f;
} cli_out;

void cli_out_init(cli_out *o, FILE *f);
void cli_out_bytes(cli_out *o, const void *p, size_t n);
void cli_out_int_line(cli_out *o, long long v); /* "<v>\n" */
int cli_out_close(cli_out *o);                  /* flush; 0 or -1 on write error */

/* Progress bar on stderr: redrawn in place on a terminal (at most 10 times a second), a few plain
 * lines otherwise. */
typedef struct {
    const char *label;
    double t0, last;
    int tty;
    int last_pct;
} cli_progress;

void cli_progress_start(cli_progress *p, const char *label);
void cli_progress_update(cli_progress *p, double done, double total, const char *extra);
void cli_progress_done(cli_progress *p, const char *extra);

#endif
