/* fuzz_trainer_state.c — libFuzzer target: a checkpoint's trainer_state.json (trainer_state_parse,
 * rlhf/trainer.c), read on every --resume.
 *
 * Input: the text of a trainer_state.json (cut at its first NUL, as a C string).
 *
 * Properties (abort on violation):
 *   - on failure, err is one non-empty line, NUL-terminated, naming the file;
 *   - on success: step, cursor and num_tokens are what the JSON holds and none is negative (a
 *     resumed run counts on them), rng is the hex string it holds, every character a hex digit; the
 *     state written back as JSON parses to the same values and settings.
 */
#include "fuzz_common.h"

#include "trainer.h"

#include <inttypes.h>
#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NAME "trainer_state.json"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FZ_CHECK(text, "out of memory");
    memcpy(text, data, size);
    text[size] = 0;
    long step;
    uint64_t cursor, rng, ntok;
    json_t *settings = NULL;
    char err[TOK_ERR_LEN];
    fz_err_reset(err);
    if (trainer_state_parse(text, NAME, &step, &cursor, &rng, &ntok, &settings, err, sizeof err)) {
        fz_check_err(err, "trainer_state_parse");
        FZ_CHECK(strncmp(err, NAME, strlen(NAME)) == 0, "error does not name the file: %s", err);
        FZ_CHECK(settings == NULL, "a failed parse returned settings");
        free(text);
        return 0;
    }
    json_t *j = json_loads(text, 0, NULL);
    FZ_CHECK(j, "trainer_state_parse accepted what jansson refuses");
    FZ_CHECK(step >= 0 && json_integer_value(json_object_get(j, "step")) == step, "step %ld", step);
    FZ_CHECK(cursor <= (uint64_t)INT64_MAX && (json_int_t)cursor == json_integer_value(json_object_get(j, "cursor")),
             "cursor %" PRIu64 " is negative or not what the file holds", cursor);
    FZ_CHECK(ntok <= (uint64_t)INT64_MAX, "num_tokens %" PRIu64 " came from a negative number", ntok);
    const char *hex = json_string_value(json_object_get(j, "rng"));
    if (hex) {
        FZ_CHECK(*hex && strlen(hex) <= 16 && strspn(hex, "0123456789abcdefABCDEF") == strlen(hex),
                 "rng \"%s\" is not 1 to 16 hex digits", hex);
        char back[32];
        snprintf(back, sizeof back, "%" PRIx64, rng);
        const char *h = hex;
        while (h[0] == '0' && h[1]) h++;
        FZ_CHECK(strcasecmp(h, back) == 0, "rng \"%s\" read as %s", hex, back);
    } else {
        FZ_CHECK(rng == 0, "rng without a string");
    }

    /* written back and read again: the same */
    char rh[32];
    snprintf(rh, sizeof rh, "%" PRIx64, rng);
    json_t *w = json_pack("{s:I, s:I, s:s, s:I}", "step", (json_int_t)step, "cursor", (json_int_t)cursor, "rng", rh,
                          "num_tokens", (json_int_t)ntok);
    FZ_CHECK(w, "out of memory");
    if (settings) json_object_set(w, "settings", settings);
    char *s = json_dumps(w, 0);
    FZ_CHECK(s, "out of memory");
    long step2;
    uint64_t cursor2, rng2, ntok2;
    json_t *settings2 = NULL;
    FZ_CHECK(trainer_state_parse(s, NAME, &step2, &cursor2, &rng2, &ntok2, &settings2, err, sizeof err) == 0,
             "the state written back does not parse: %s", err);
    FZ_CHECK(step2 == step && cursor2 == cursor && rng2 == rng && ntok2 == ntok, "the state changed on the way back");
    FZ_CHECK((settings == NULL) == (settings2 == NULL) && (!settings || json_equal(settings, settings2)),
             "the settings changed on the way back");
    free(s);
    json_decref(settings2);
    json_decref(w);
    json_decref(settings);
    json_decref(j);
    free(text);
    return 0;
}
