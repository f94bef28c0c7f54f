/*
 * test_pickle_stack: tuples built from marks on an empty stack, before the
 * stack has any memory (clang's UBSan caught the reader adding an offset to
 * that null pointer): each is an empty tuple, read cleanly.  Run it under
 * a clang sanitizer build to see the fault it guards against.
 */
#include "base/err.h"
#include "format/pickle.h"

#include "check.h"

#define P(s) (const uint8_t *)(s), sizeof(s) - 1

static int test_empty_tuple_from_mark(void)
{
    pk_doc *d = pk_parse(P("\x80\x02(t."), NULL, "t");
    EXPECT(d, "parsed: %s", err_msg());
    const pk_value *r = pk_root(d);
    EXPECT(r->type == PK_TUPLE && r->u.seq.n == 0, "an empty tuple");
    pk_free(d);
    /* the same with no protocol header: the MARK is the first opcode */
    d = pk_parse(P("(t."), NULL, "t");
    EXPECT(d, "parsed: %s", err_msg());
    EXPECT(pk_root(d)->type == PK_TUPLE && pk_root(d)->u.seq.n == 0, "an empty tuple");
    pk_free(d);
    return 0;
}

CHECK_MAIN(T(test_empty_tuple_from_mark))
