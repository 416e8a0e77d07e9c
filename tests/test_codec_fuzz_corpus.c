/*
 * test_codec_fuzz_corpus.c: the fuzz target's checks (tests/fuzz/fuzz_decode.c)
 * in the ordinary sanitized build, without libFuzzer: every seed of
 * tests/fuzz/corpus/decode, every proper prefix of it and, at every position,
 * a few byte substitutions. A crash, a sanitizer report, or any disagreement
 * between the direct coder, avro-c's generic values and avro-c's resolved
 * reader fails the test. (tests/fuzz/run.sh is the open-ended search.)
 */
#include <dirent.h>

#include "../tests/fuzz/fuzz_decode.c"
#include "test.h"

static long runs;

static void run(const unsigned char *data, size_t len)
{
    /* An exact-size copy, so ASan catches any read past the end. */
    unsigned char *copy = malloc(len ? len : 1);
    ASSERT_TRUE(copy != NULL);
    memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
    runs++;
}

int main(void)
{
    static const unsigned char subst[] = {0x00, 0x01, 0x02, 0x7f, 0x80, 0xc3, 0xfe, 0xff};
    char dirpath[1024], path[2048], errstr[512];
    int files = 0;

    snprintf(dirpath, sizeof(dirpath), "%s/tests/fuzz/corpus/decode", hub_test_env("HUB_DATA_DIR"));
    DIR *d = opendir(dirpath);
    if (!d)
        TEST_FAIL_("cannot open %s", dirpath);
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        size_t len = 0;
        snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
        unsigned char *data = (unsigned char *)hub_read_file(path, &len, errstr, sizeof(errstr));
        if (!data)
            TEST_FAIL_("%s", errstr);
        for (size_t n = 0; n <= len; n++)
            run(data, n);
        for (size_t i = 0; i < len; i++) {
            unsigned char orig = data[i];
            for (size_t k = 0; k < sizeof(subst); k++) {
                data[i] = subst[k];
                run(data, len);
            }
            data[i] = orig;
        }
        free(data);
        files++;
    }
    closedir(d);
    ASSERT_INT_OP(files, >=, 40);
    fprintf(stderr, "%d seeds, %ld inputs: no crash, every decode path agreed\n", files, runs);
    return 0;
}
