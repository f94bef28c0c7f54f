/*
 * test_num: lib/num (whole-string integers with overflow and range checks)
 * and lib/strmap (the hashed name index): edge cases, and a map of many
 * keys that would be slow with a linear scan.
 */
#include "base/err.h"
#include "base/num.h"
#include "base/strmap.h"

#include "check.h"

#include <stdint.h>
#include <time.h>

static int bad_(const char *s, int64_t min, int64_t max, const char *want)
{
    int64_t v = 77;
    if (num_parse_i64(s, min, max, &v) != -1 || v != 77 || !strstr(err_msg(), want)) {
        fprintf(stderr, "# '%s': got %lld, message '%s', want '%s'\n", s, (long long)v, err_msg(), want);
        return 1;
    }
    return 0;
}

static int test_parse(void)
{
    int64_t v = 0;
    EXPECT(num_parse_i64("12", 0, 100, &v) == 0 && v == 12, "12");
    EXPECT(num_parse_i64("-5", -5, 0, &v) == 0 && v == -5, "-5");
    EXPECT(num_parse_i64("9223372036854775807", 0, INT64_MAX, &v) == 0 && v == INT64_MAX, "max");
    EXPECT(num_parse_i64("-9223372036854775808", INT64_MIN, 0, &v) == 0 && v == INT64_MIN, "min");
    int fails = bad_("12345678901234567890123", 0, INT64_MAX, "out of range") +
                bad_("-12345678901234567890123", INT64_MIN, 0, "out of range") +
                bad_("9223372036854775808", 0, INT64_MAX, "out of range") +
                bad_("-5", 0, 10, "out of range [0, 10]") + bad_("", 0, 10, "not an integer") +
                bad_(" 3", 0, 10, "not an integer") + bad_("3 ", 0, 10, "not an integer") +
                bad_("1e3", 0, 10000, "not an integer") + bad_("0x10", 0, 100, "not an integer") +
                bad_("12abc", 0, 100, "not an integer") + bad_(NULL, 0, 100, "not an integer");
    EXPECT(fails == 0, "%d bad cases accepted", fails);
    EXPECT(num_whole_i64(3.0, 0, 5, &v) == 0 && v == 3, "3.0");
    EXPECT(num_whole_i64(2.5, 0, 5, &v) == -1, "2.5");
    EXPECT(num_whole_i64(1e300, 0, 5, &v) == -1, "1e300");
    EXPECT(num_whole_i64(NAN, 0, 5, &v) == -1, "NaN");
    return 0;
}

static int test_strmap(void)
{
    enum { N = 200000 };
    static char keys[N][16];
    strmap m = {0};
    EXPECT(strmap_get(&m, "x", 1) == -1, "empty map");
    clock_t t0 = clock();
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        EXPECT(strmap_put(&m, keys[i], strlen(keys[i]), i, NULL) == 0, "put %d", i);
    }
    int old = -1;
    EXPECT(strmap_put(&m, "k7", 2, 99, &old) == 1 && old == 7, "repeated key keeps its value");
    for (int i = 0; i < N; i++)
        EXPECT(strmap_get(&m, keys[i], strlen(keys[i])) == i, "get %d", i);
    EXPECT(strmap_get(&m, "k1234567", 8) == -1, "absent key");
    /* a prefix given with its length */
    EXPECT(strmap_get(&m, "k12.weight", 3) == 12, "prefix lookup");
    strmap_set(&m, "k5", 2, 500);
    EXPECT(strmap_get(&m, "k5", 2) == 500, "set");
    double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
    printf("# %d keys put and got in %.3f s\n", N, s);
    EXPECT(s < 2.0, "%.2f s for %d keys: not O(1) per key", s, N);
    strmap_free(&m);
    EXPECT(m.n == 0 && strmap_get(&m, "k1", 2) == -1, "freed map is empty");
    return 0;
}

CHECK_MAIN(T(test_parse), T(test_strmap))
