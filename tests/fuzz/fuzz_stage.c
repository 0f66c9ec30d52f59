/* fuzz_stage.c — libFuzzer target: the demo's stage records (stage.json, read by the caching
 * stage runner, rlhf/stage.c: stage_record_match), which decide whether a stage runs again.
 *
 * Input: the text of a stage.json. The hash asked for is HASH (the seeds hold it), so both answers
 * are reached.
 *
 * Properties (abort on violation):
 *   - the answer is 1 exactly when the text is JSON whose "hash" is the string HASH;
 *   - then the summary text is NUL-terminated within its buffer and one printable line (it is shown
 *     as one line of progress), for a small buffer and a large one alike, the small one a prefix of
 *     the large; seconds is what the record holds (0 when it holds no number);
 *   - nothing is written when the answer is 0.
 */
#include "fuzz_common.h"

#include "stage.h"

#include <jansson.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HASH "0123456789abcdef"

static void check_line(const char *text, size_t n)
{
    const char *nul = memchr(text, 0, n);
    FZ_CHECK(nul, "the summary is not NUL-terminated within %zu bytes", n);
    for (const char *p = text; p < nul; p++)
        FZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7F, "control character 0x%02x in the summary", (unsigned char)*p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char small[24], large[512];
    memset(small, 0xA5, sizeof small);
    memset(large, 0xA5, sizeof large);
    double s1 = -7, s2 = -7;
    const int a = stage_record_match((const char *)data, size, HASH, &s1, small, sizeof small);
    const int b = stage_record_match((const char *)data, size, HASH, &s2, large, sizeof large);
    FZ_CHECK(a == b, "two answers for one text");
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    const char *h = json_string_value(json_object_get(j, "hash"));
    FZ_CHECK(a == (h && strcmp(h, HASH) == 0), "answered %d for hash %s", a, h ? h : "(none)");
    if (a) {
        check_line(small, sizeof small);
        check_line(large, sizeof large);
        FZ_CHECK(strncmp(small, large, strlen(small)) == 0, "the short summary is not a prefix of the long one");
        FZ_CHECK(s1 == s2 && s1 == json_number_value(json_object_get(j, "seconds")), "seconds %g", s1);
    } else {
        FZ_CHECK(s1 == -7 && (unsigned char)small[0] == 0xA5 && (unsigned char)large[0] == 0xA5,
                 "a record that does not match wrote its outputs");
    }
    json_decref(j);
    return 0;
}
