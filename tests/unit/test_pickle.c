/*
 * test_pickle: lib/pickle's data reader on crafted byte strings (every opcode
 * it accepts, torch tensors and storages, forbidden globals, malformed
 * stacks), every truncation and thousands of random mutations of a real
 * checkpoint-shaped pickle (must fail cleanly, never crash: run under ASan),
 * and the writer read back by the reader.
 */
#include "base/err.h"
#include "format/pickle.h"

#include "check.h"

#include <stdint.h>

#define P(s) (const uint8_t *)(s), sizeof(s) - 1

static pk_doc *parse(const uint8_t *b, size_t n)
{
    return pk_parse(b, n, NULL, "t");
}

static int expect_error(const uint8_t *b, size_t n, const char *want)
{
    pk_doc *d = parse(b, n);
    if (d) {
        pk_free(d);
        printf("# accepted a bad pickle (wanted '%s')\n", want);
        return 1;
    }
    if (!strstr(err_msg(), want)) {
        printf("# message '%s' lacks '%s'\n", err_msg(), want);
        return 1;
    }
    return 0;
}

static int test_scalars_and_containers(void)
{
    /* {'a': 1, 'b': [-2, 300, 70000, 2**40, -5], 'c': (1.5, None, True), 'd': 'x'} */
    static const uint8_t b[] = "\x80\x02}q\x00(X\x01\x00\x00\x00"
                               "aK\x01X\x01\x00\x00\x00"
                               "b]q\x01(J\xfe\xff\xff\xff"
                               "M,\x01J\x70\x11\x01\x00\x8a\x06\x00\x00\x00\x00\x00\x01\x8a\x01\xfb"
                               "eX\x01\x00\x00\x00"
                               "c"
                               "(G?\xf8\x00\x00\x00\x00\x00\x00N\x88tX\x01\x00\x00\x00"
                               "d\x8c\x01xu.";
    size_t used = 0;
    pk_doc *d = pk_parse(b, sizeof b - 1, &used, "t");
    EXPECT(d, "%s", err_msg());
    EXPECT(used == sizeof b - 1, "used %zu", used);
    const pk_value *r = pk_root(d), *a = pk_dict_get(r, "a"), *l = pk_dict_get(r, "b"),
                   *c = pk_dict_get(r, "c");
    EXPECT(a && a->type == PK_INT && a->u.i == 1, "a");
    EXPECT(l && l->type == PK_LIST && l->u.seq.n == 5, "b");
    int64_t want[] = {-2, 300, 70000, (int64_t)1 << 40, -5};
    for (int i = 0; i < 5; i++)
        EXPECT(l->u.seq.items[i]->u.i == want[i], "b[%d] = %lld", i, (long long)l->u.seq.items[i]->u.i);
    EXPECT(c && c->type == PK_TUPLE && c->u.seq.n == 3 && c->u.seq.items[0]->u.f == 1.5, "c");
    char *j = pk_to_json(r, 1000);
    EXPECT(
        j && !strcmp(j, "{\"a\":1,\"b\":[-2,300,70000,1099511627776,-5],\"c\":[1.5,null,true],\"d\":\"x\"}"),
        "json %s", j ? j : err_msg());
    free(j);
    pk_free(d);
    return 0;
}

static int test_memo_and_ordered_dict(void)
{
    /* OrderedDict() with items, BUILD of a _metadata attribute, memo reuse */
    static const uint8_t b[] =
        "\x80\x02\x63\x63ollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00kq\x02K\x07"
        "h\x02r\x05\x00\x00\x00K\x08u}X\x09\x00\x00\x00_metadatah\x01sb"
        "]q\x03(h\x01j\x05\x00\x00\x00"
        "e\x86.";
    pk_doc *d = parse(b, sizeof b - 1);
    EXPECT(d, "%s", err_msg());
    const pk_value *r = pk_root(d);
    EXPECT(r->type == PK_TUPLE && r->u.seq.n == 2, "root tuple");
    const pk_value *od = r->u.seq.items[0];
    EXPECT(od->type == PK_DICT && od->u.dict.n == 2, "dict with 2 items (repeat kept)");
    EXPECT(pk_dict_get(od, "k")->u.i == 8, "last value wins on lookup");
    EXPECT(r->u.seq.items[1]->u.seq.n == 2 && r->u.seq.items[1]->u.seq.items[0] == od, "memo shares");
    pk_free(d);
    return 0;
}

/* A state_dict-shaped pickle: {'w': tensor 2x3 at offset 1 with strides (1, 2)} */
static const uint8_t tensor_pkl[] =
    "\x80\x02}q\x00X\x01\x00\x00\x00wq\x01\x63torch._utils\n_rebuild_tensor_v2\nq\x02(("
    "X\x07\x00\x00\x00storageq"
    "\x03\x63torch\nHalfStorage\nq\x04X\x01\x00\x00\x00"
    "0q\x05X\x03\x00\x00\x00"
    "cpuq\x06K\x08tq\x07QK\x01K\x02K\x03"
    "\x86q\x08K\x01K\x02\x86q\x09\x89\x63\x63ollections\nOrderedDict\nq\x0a)Rq\x0btq\x0cRq\x0ds.";

static int test_tensor(void)
{
    pk_doc *d = parse(P(tensor_pkl));
    EXPECT(d, "%s", err_msg());
    const pk_value *t = pk_dict_get(pk_root(d), "w");
    EXPECT(t && t->type == PK_TENSOR, "tensor");
    EXPECT(t->u.tensor.ndim == 2 && t->u.tensor.shape[0] == 2 && t->u.tensor.shape[1] == 3, "shape");
    EXPECT(t->u.tensor.stride[0] == 1 && t->u.tensor.stride[1] == 2 && t->u.tensor.offset == 1,
           "stride/offset");
    const pk_value *s = t->u.tensor.storage;
    EXPECT(s->type == PK_STORAGE && s->u.storage.dtype == PK_F16 && !strcmp(s->u.storage.key, "0") &&
               s->u.storage.numel == 8 && !strcmp(s->u.storage.location, "cpu"),
           "storage");
    EXPECT(pk_storage_count(d) == 1 && pk_storage_at(d, 0) == s, "storage list");
    EXPECT(pk_is_tensor_dict(pk_root(d)), "state_dict");
    EXPECT(!pk_to_json(pk_root(d), 1000) && strstr(err_msg(), "tensor cannot be written"), "%s", err_msg());
    pk_free(d);
    return 0;
}

static int test_forbidden_globals(void)
{
    if (expect_error(P("\x80\x02\x63os\nsystem\nX\x02\x00\x00\x00ls\x85R."),
                     "forbidden global 'os.system'") ||
        expect_error(P("\x80\x02\x63posix\nsystem\n."), "forbidden global 'posix.system'") ||
        expect_error(P("\x80\x04\x8c\x08\x62uiltins\x8c\x04\x65val\x93."),
                     "forbidden global 'builtins.eval'") ||
        expect_error(P("\x80\x02\x63torch\ndevice\n."), "forbidden global 'torch.device'") ||
        expect_error(P("\x80\x02\x63numpy.core.multiarray\nscalar\n."), "forbidden global") ||
        expect_error(P("\x80\x02\x63torch\nFloatStorage\n)R."), "storage class called directly") ||
        expect_error(P("\x80\x02K\x01)R."), "REDUCE on a int") ||
        expect_error(P("\x80\x02\x63\x63ollections\nOrderedDict\nK\x01\x85R."),
                     "OrderedDict with arguments") ||
        expect_error(P("\x80\x02X\x01\x00\x00\x00x\x85Q."), "not a torch storage"))
        return 1;
    return 0;
}

static int test_malformed(void)
{
    if (expect_error(P(""), "empty pickle") || expect_error(P("\x80\x02"), "no STOP") ||
        expect_error(P("\x80\x02."), "STOP with a malformed stack") ||
        expect_error(P("\x80\x02K\x01K\x02."), "STOP with a malformed stack") ||
        expect_error(P("\x80\x02t."), "no mark") || expect_error(P("\x80\x02(0."), "stack underflow") ||
        expect_error(P("\x80\x02}(K\x01u."), "odd item count") ||
        expect_error(P("\x80\x02K\x01(K\x01K\x02u."), "SETITEM on a int") ||
        expect_error(P("\x80\x02K\x01K\x02"
                       "a."),
                     "APPEND to a int") ||
        expect_error(P("\x80\x02h\x05."), "memo key not defined") ||
        expect_error(P("\x80\x02K\x01r\xff\xff\xff\xff."), "memo index out of range") ||
        expect_error(P("\x80\x02X\xff\xff\xff\x7f\x61"), "truncated pickle") ||
        expect_error(P("\x80\x02\x63os\nsys"), "truncated GLOBAL") ||
        expect_error(P("\x80\x02\xff."), "unsupported pickle opcode 0xff") ||
        expect_error(P("\x80\x09."), "unsupported pickle protocol") ||
        expect_error(P("\x80\x02K\x01\x87."), "stack underflow") ||
        expect_error(P("\x80\x02]((]e."), "APPENDS without a list") || /* list below another mark */
        expect_error(P("\x80\x02K\x01K\x01"
                       "b."),
                     "BUILD on a int"))
        return 1;
    /* a list that contains itself is infinitely deep: refused, so no walker
     * has to guard against cycles */
    return expect_error(P("\x80\x02]q\x00h\x00"
                          "a."),
                        "nested deeper than 64 levels");
}

static int test_legacy_magic(void)
{
    static const uint8_t b[] = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.\x80\x02M\xe9\x03.";
    size_t used;
    pk_doc *d = pk_parse(b, sizeof b - 1, &used, "t");
    EXPECT(d && used == 15, "magic pickle");
    EXPECT(pk_root(d)->type == PK_BIGINT && pk_root(d)->u.str.len == 10, "big int");
    pk_free(d);
    d = pk_parse(b + used, sizeof b - 1 - used, NULL, "t");
    EXPECT(d && pk_root(d)->u.i == 1001, "second pickle");
    pk_free(d);
    return 0;
}

/* Every prefix of a valid pickle is rejected, never crashes. */
static int test_truncations(void)
{
    size_t n = sizeof tensor_pkl - 1;
    for (size_t k = 0; k < n; k++) {
        pk_doc *d = parse(tensor_pkl, k);
        EXPECT(!d, "prefix %zu accepted", k);
    }
    return 0;
}

/* Random byte mutations: any outcome but a crash (ASan/UBSan watch). */
static int test_mutations(void)
{
    size_t n = sizeof tensor_pkl - 1;
    uint8_t buf[sizeof tensor_pkl];
    uint32_t x = 12345;
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, tensor_pkl, n);
        int k = 1 + (int)(x % 4);
        for (int j = 0; j < k; j++) {
            x = x * 1664525u + 1013904223u;
            size_t at = (x >> 8) % n;
            x = x * 1664525u + 1013904223u;
            buf[at] = (uint8_t)(x >> 24);
        }
        pk_doc *d = parse(buf, n);
        if (d) {
            char *j = pk_to_json(pk_root(d), 1 << 16); /* walk whatever came out */
            free(j);
            accepted++;
        }
        pk_free(d);
    }
    printf("# 20000 mutations, %d still parse\n", accepted);
    return 0;
}

static int test_writer_round_trip(void)
{
    pk_writer w;
    pkw_init(&w);
    pkw_op(&w, '}');
    pkw_cstr(&w, "n");
    pkw_op(&w, ']');
    int64_t vals[] = {0, 255, 256, 65535, 65536, -1, INT32_MIN, INT32_MAX, (int64_t)1 << 33, INT64_MIN};
    for (int i = 0; i < 10; i++) {
        pkw_int(&w, vals[i]);
        pkw_op(&w, 'a');
    }
    pkw_op(&w, 's');
    pkw_cstr(&w, "f");
    pkw_float(&w, -0.1);
    pkw_op(&w, 's');
    pkw_cstr(&w, "s");
    pkw_str(&w, "\xc3\xa9\n\"", 4);
    pkw_op(&w, 's');
    pkw_cstr(&w, "t");
    pkw_op(&w, '(');
    pkw_none(&w);
    pkw_bool(&w, 1);
    pkw_op(&w, 't');
    pkw_op(&w, 's');
    EXPECT(pkw_finish(&w) == 0, "finish");
    pk_doc *d = parse(w.buf, w.len);
    EXPECT(d, "%s", err_msg());
    const pk_value *l = pk_dict_get(pk_root(d), "n");
    for (int i = 0; i < 10; i++)
        EXPECT(l->u.seq.items[i]->type == PK_INT && l->u.seq.items[i]->u.i == vals[i], "int %d", i);
    EXPECT(pk_dict_get(pk_root(d), "f")->u.f == -0.1, "float");
    char *j = pk_to_json(pk_root(d), 1000);
    EXPECT(j && strstr(j, "\"f\":-0.1,\"s\":\"\xc3\xa9\\u000a\\\"\",\"t\":[null,true]"), "json %s",
           j ? j : err_msg());
    free(j);
    pk_free(d);
    pkw_destroy(&w);
    return 0;
}

CHECK_MAIN(T(test_scalars_and_containers), T(test_memo_and_ordered_dict), T(test_tensor),
           T(test_forbidden_globals), T(test_malformed), T(test_legacy_magic), T(test_truncations),
           T(test_mutations), T(test_writer_round_trip))
