/*
 * ckpt: inspect, convert (PyTorch .pth <-> safetensors), extract and compare
 * checkpoints.  docs/ckpt.md is the manual.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "backend/backend.h"
#include "nn/checkpoint.h"
#include "tool/cli.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/half.h"
#include "nn/model.h"
#include "format/torchfile.h"

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: ckpt info [--summary] FILE\n"
               "       ckpt import [--no-check] IN.pth OUT.safetensors\n"
               "       ckpt export [--no-check] IN OUT.pth\n"
               "       ckpt extract --net NAME[,NAME...] [--dtype T] IN OUT.safetensors\n"
               "       ckpt diff [--tol X] [--all] A B\n"
               "       ckpt meta [--json] FILE [KEY]\n"
               "       ckpt meta --set KEY=VALUE [--set ...] IN OUT.safetensors\n"
               "Inspect, convert, extract and compare checkpoints (.pth from torch.save, zip or\n"
               "legacy, and safetensors).\n\n"
               "  --summary        info: nets and metadata only, no tensor list\n"
               "  --no-check       import/export: skip loading G/F/DX/DY into the models\n"
               "  --net NAMES      extract: the networks to keep (G, F, DX, DY; e.g. G,F), prefixes kept\n"
               "  --dtype T        extract: store float tensors as f32, f16 or bf16 (default: as they are)\n"
               "  --tol X          diff: largest absolute difference still equal (default 0)\n"
               "  --all            diff: a line for every tensor, not only differing ones\n"
               "  --set KEY=VALUE  meta: write IN to OUT with this metadata value (an empty VALUE\n"
               "                   drops the key); the tensors are copied byte for byte\n"
               "  --json           meta: the value as a JSON string, or every entry as one JSON object\n"
               "  --help, --version\n"
               "diff exits 0 when the tensors match within --tol, 1 when they differ.  Listings escape\n"
               "a backslash, tab, newline or other control byte in names and values (\\\\, \\t, \\n,\n"
               "\\ooo): a file cannot forge a line of them.\n");
    exit(status);
}

/* Load every reference net in f into the model to prove names and shapes. */
static int check_nets(const st_file *f)
{
    static const char *const nets[] = {"G.", "F.", "DX.", "DY."};
    backend_t be = NULL;
    int rc = 0;
    for (int k = 0; k < 4 && !rc; k++) {
        if (!ckpt_has_net(f, nets[k]))
            continue;
        if (!be && !(be = backend_cpu_init()))
            return err_set("cannot start the CPU backend");
        struct gen_config gc;
        struct disc_config dc;
        struct net *n = NULL;
        if (k < 2)
            rc = ckpt_gen_config(f, nets[k], &gc) || !(n = gen_new(be, &gc, NULL));
        else
            rc = ckpt_disc_config(f, nets[k], &dc) || !(n = disc_new(be, &dc, NULL));
        rc = rc || ckpt_load_net(f, nets[k], n);
        net_free(n);
    }
    backend_free(be);
    return rc ? -1 : 0;
}

/* The set as a parsed safetensors file in memory, for check_nets (the
 * messages name label). */
static st_file *set_as_st(const tf_set *s, const char *label)
{
    if (s->st)
        return NULL;
    uint8_t *buf = NULL;
    size_t len = 0;
    st_file *f = tf_set_st_bytes(s, &buf, &len) == 0 ? st_parse(buf, len, label) : NULL;
    free(buf);
    return f;
}

/* Every reference net in the set loads into the model, unless --no-check. */
static void check_set(const tf_set *s, const char *label, int check)
{
    if (!check)
        return;
    st_file *own = s->st ? NULL : set_as_st(s, label);
    const st_file *f = s->st ? s->st : own;
    if (!f || check_nets(f))
        die("%s", err_msg());
    st_free(own);
}

/* Any file: .pth or safetensors, whose format metadata this build reads. */
static void open_set(const char *path, tf_set *s)
{
    if (tf_set_open(path, s) ||
        ckpt_check_format(path, tf_set_get_meta(s, "format"), tf_set_get_meta(s, "format_version")))
        die("%s", err_msg());
}

static double elem(const tf_tensor *t, int64_t i)
{
    const uint8_t *p = (const uint8_t *)t->data + (size_t)i * st_dtype_size(t->dtype);
    union {
        float f;
        double d;
        int64_t i64;
        int32_t i32;
        int16_t i16;
        uint16_t u16;
    } u;
    memcpy(&u, p, st_dtype_size(t->dtype));
    switch (t->dtype) {
    case ST_F32: return u.f;
    case ST_F64: return u.d;
    case ST_F16: return half_to_f32(u.u16);
    case ST_BF16: return bf16_to_f32(u.u16);
    case ST_I64: return (double)u.i64;
    case ST_I32: return u.i32;
    case ST_I16: return u.i16;
    case ST_I8: return (int8_t)*p;
    default: return *p;
    }
}

static void shape_str(char *b, size_t n, const tf_tensor *t)
{
    size_t at = (size_t)snprintf(b, n, "[");
    for (int i = 0; i < t->ndim && at < n; i++)
        at += (size_t)snprintf(b + at, n - at, "%s%lld", i ? "," : "", (long long)t->shape[i]);
    if (at < n)
        snprintf(b + at, n - at, "]");
}

static int cmd_info(const char *path, int summary)
{
    tf_set s;
    open_set(path, &s);
    int64_t values = 0;
    size_t bytes = 0;
    for (int i = 0; i < s.n; i++) {
        values += s.t[i].numel;
        bytes += s.t[i].nbytes;
    }
    cli_put_escaped(stdout, path);
    printf(": %s, %d tensors, %lld values, %zu bytes\n", s.format, s.n, (long long)values, bytes);
    if (s.nmeta)
        printf("metadata:\n");
    for (int i = 0; i < s.nmeta; i++) {
        char v[201];
        snprintf(v, sizeof v, "%s", s.meta_val[i]);
        printf("  ");
        cli_put_escaped(stdout, s.meta_key[i]);
        printf(" = ");
        cli_put_escaped(stdout, v);
        printf("%s\n", strlen(s.meta_val[i]) > 200 ? "..." : "");
    }
    printf("groups:\n");
    /* one line per first name component, in order of first appearance */
    struct group {
        int first, nt, np;
        int64_t tv, pv;
    } *g = calloc((size_t)s.n + 1, sizeof *g);
    strmap heads = {0};
    int ng = 0;
    if (!g)
        die("out of memory");
    for (int i = 0; i < s.n; i++) {
        const char *nm = s.t[i].name;
        int k = ng;
        int rc = strmap_put(&heads, nm, strcspn(nm, "."), k, &k);
        if (rc < 0)
            die("%s", err_msg());
        if (rc == 0)
            g[ng++].first = i;
        g[k].nt++;
        g[k].tv += s.t[i].numel;
        if (!tf_is_buffer_name(nm) && strncmp(nm, "opt_", 4) != 0) {
            g[k].np++;
            g[k].pv += s.t[i].numel;
        }
    }
    for (int k = 0; k < ng; k++) {
        const char *nm = s.t[g[k].first].name;
        char head[256];
        int hn = (int)strcspn(nm, ".");
        snprintf(head, sizeof head, "%.*s", hn, nm);
        printf("  ");
        cli_put_escaped(stdout, head);
        printf("%*s %5d tensors %10lld values", hn < 8 ? 8 - hn : 0, "", g[k].nt, (long long)g[k].tv);
        if (g[k].np)
            printf(", %d parameters (%lld values)", g[k].np, (long long)g[k].pv);
        printf("\n");
    }
    strmap_free(&heads);
    free(g);
    if (!summary) {
        printf("tensors:\n");
        for (int i = 0; i < s.n; i++) {
            char sh[160];
            shape_str(sh, sizeof sh, &s.t[i]);
            printf("  ");
            cli_put_escaped(stdout, s.t[i].name);
            printf(" %s %s\n", st_dtype_name(s.t[i].dtype), sh);
        }
    }
    tf_set_free(&s);
    return 0;
}

/* Checked in memory first, so nothing appears at OUT for a refused file;
 * the write itself is atomic (temporary file + rename). */
static int cmd_import(const char *in, const char *out, int check)
{
    tf_set s;
    if (tf_set_from_pth(in, &s))
        die("%s", err_msg());
    check_set(&s, in, check);
    if (tf_set_save_st(&s, out))
        die("%s", err_msg());
    tf_set_free(&s);
    return 0;
}

static int cmd_export(const char *in, const char *out, int check)
{
    tf_set s;
    open_set(in, &s);
    check_set(&s, in, check);
    if (tf_set_save_pth(&s, out))
        die("%s", err_msg());
    tf_set_free(&s);
    return 0;
}

#define KEEP_DTYPE ST_DTYPE_COUNT /* extract without --dtype */

/* Is name under one of the comma-separated prefixes of nets ("G,F")? */
static int in_nets(const char *name, const char *nets)
{
    for (const char *p = nets; *p;) {
        size_t n = strcspn(p, ",");
        if (n && !strncmp(name, p, n) && name[n] == '.')
            return 1;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* Add t to o as dtype dt (a float type) when t is a float tensor: f16
 * refuses values it would turn into infinities rather than store them. */
static int add_as(tf_set *o, const tf_tensor *t, st_dtype dt)
{
    int is_float = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64;
    if (dt == KEEP_DTYPE || !is_float || t->dtype == dt)
        return tf_set_add(o, t->name, t->dtype, t->shape, t->ndim, t->data, t->nbytes, 0);
    size_t n = (size_t)t->numel, width = dt == ST_F32 ? 4 : 2;
    float *f = malloc(n * sizeof *f + 1);
    void *outb = malloc(n * width + 1);
    int rc = !f || !outb ? err_set("out of memory") : 0;
    for (size_t k = 0; k < n && !rc; k++)
        f[k] = (float)elem(t, (int64_t)k);
    if (!rc && dt == ST_F32)
        memcpy(outb, f, n * sizeof *f);
    else if (!rc && dt == ST_F16)
        half_from_f32_n(outb, f, n);
    else if (!rc)
        bf16_from_f32_n(outb, f, n);
    for (size_t k = 0; k < n && !rc && dt == ST_F16; k++)
        if (isfinite(f[k]) && !isfinite(half_to_f32(((uint16_t *)outb)[k])))
            rc = err_set("%s: %g does not fit in f16 (use --dtype bf16)", t->name, f[k]);
    if (!rc)
        rc = tf_set_add(o, t->name, dt, t->shape, t->ndim, outb, n * width, 1);
    free(f);
    free(outb);
    return rc;
}

static int cmd_extract(const char *net, st_dtype dt, const char *in, const char *out)
{
    tf_set s, o;
    tf_set_init(&o);
    open_set(in, &s);
    for (int i = 0; i < s.n; i++)
        if (in_nets(s.t[i].name, net) && add_as(&o, &s.t[i], dt))
            die("%s", err_msg());
    if (!o.n)
        die(strchr(net, ',') ? "%s: no tensors under any of '%s' (NAME.*)" : "%s: no tensors under '%s.'", in,
            net);
    static const char *const keep[] = {"format", "format_version", "epoch", "step", "config"};
    /* the input's file name only: a shipped model carries no folder of the machine that made it */
    const char *base = strrchr(in, '/') ? strrchr(in, '/') + 1 : in;
    char src[4200];
    snprintf(src, sizeof src, "ckpt extract --net %s%s%s %s", net, dt == KEEP_DTYPE ? "" : " --dtype ",
             dt == KEEP_DTYPE ? "" : st_dtype_name(dt), base);
    for (size_t k = 0; k < sizeof keep / sizeof *keep; k++)
        if (tf_set_get_meta(&s, keep[k]) && tf_set_meta(&o, keep[k], tf_set_get_meta(&s, keep[k])))
            die("%s", err_msg());
    if (tf_set_meta(&o, "kind", "weights") || tf_set_meta(&o, "source", src) || tf_set_save_st(&o, out))
        die("%s", err_msg());
    tf_set_free(&o);
    tf_set_free(&s);
    return 0;
}

/* Print s as a JSON string (cJSON escapes quotes and control bytes). */
static void put_json_string(const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    if (!t)
        die("out of memory");
    fputs(t, stdout);
    cJSON_free(t);
    cJSON_Delete(j);
}

/* One metadata value (e.g. the JSON of `config`), or every entry as
 * KEY=VALUE lines, escaped (cli_put_escaped) so that each is one line; with
 * --json the value as a JSON string, or every entry as one JSON object of
 * strings: for scripts, which then need no unescaping rules of ours. */
static int cmd_meta(const char *path, const char *key, int json)
{
    tf_set s;
    open_set(path, &s);
    if (key) {
        const char *v = tf_set_get_meta(&s, key);
        if (!v)
            die("%s: no metadata '%s'", path, key);
        json ? put_json_string(v) : cli_put_escaped(stdout, v);
        putchar('\n');
    } else if (json) {
        putchar('{');
        for (int i = 0; i < s.nmeta; i++) {
            printf(i ? "," : "");
            put_json_string(s.meta_key[i]);
            putchar(':');
            put_json_string(s.meta_val[i]);
        }
        printf("}\n");
    } else {
        for (int i = 0; i < s.nmeta; i++) {
            cli_put_escaped(stdout, s.meta_key[i]);
            putchar('=');
            cli_put_escaped(stdout, s.meta_val[i]);
            putchar('\n');
        }
    }
    tf_set_free(&s);
    return 0;
}

/* IN to OUT with metadata changed (KEY=VALUE each; KEY= drops KEY): the
 * tensors are the same bytes, in the same order. */
static int cmd_set_meta(char **sets, int nsets, const char *in, const char *out)
{
    tf_set s, o;
    tf_set_init(&o);
    open_set(in, &s);
    for (int i = 0; i < s.n; i++) {
        const tf_tensor *t = &s.t[i];
        if (tf_set_add(&o, t->name, t->dtype, t->shape, t->ndim, t->data, t->nbytes, 0))
            die("%s", err_msg());
    }
    for (int i = 0; i < s.nmeta; i++) {
        int dropped = 0;
        for (int k = 0; k < nsets; k++) {
            size_t n = strcspn(sets[k], "=");
            dropped |= !sets[k][n + 1] && strlen(s.meta_key[i]) == n && !strncmp(sets[k], s.meta_key[i], n);
        }
        if (!dropped && tf_set_meta(&o, s.meta_key[i], s.meta_val[i]))
            die("%s", err_msg());
    }
    for (int k = 0; k < nsets; k++) {
        char *eq = strchr(sets[k], '=');
        *eq = 0;
        if (eq[1] && tf_set_meta(&o, sets[k], eq + 1))
            die("%s", err_msg());
        *eq = '=';
    }
    if (tf_set_save_st(&o, out))
        die("%s", err_msg());
    tf_set_free(&o);
    tf_set_free(&s);
    return 0;
}

static int cmd_diff(const char *a, const char *b, double tol, int all)
{
    tf_set x, y;
    open_set(a, &x);
    open_set(b, &y);
    int differ = 0, ndiff = 0;
    double worst = 0;
    for (int i = 0; i < x.n; i++) {
        const tf_tensor *p = &x.t[i], *q = tf_set_find(&y, p->name);
        char sp[160], sq[160];
        shape_str(sp, sizeof sp, p);
        if (!q) {
            cli_put_escaped(stdout, p->name);
            printf(": only in %s\n", a);
            differ = 1;
            continue;
        }
        shape_str(sq, sizeof sq, q);
        if (p->numel != q->numel || strcmp(sp, sq) != 0) {
            cli_put_escaped(stdout, p->name);
            printf(": shape %s vs %s\n", sp, sq);
            differ = 1;
            continue;
        }
        double mabs = 0, mrel = 0;
        for (int64_t k = 0; k < p->numel; k++) {
            double u = elem(p, k), v = elem(q, k), d = fabs(u - v);
            if (isnan(d) && !(isnan(u) && isnan(v)))
                d = INFINITY;
            else if (isnan(d))
                d = 0;
            double m = fmax(fabs(u), fabs(v));
            mabs = fmax(mabs, d);
            if (m > 0)
                mrel = fmax(mrel, d / m);
        }
        int bad = mabs > tol;
        worst = fmax(worst, mabs);
        ndiff += bad;
        if (bad || all) {
            cli_put_escaped(stdout, p->name);
            printf(": max abs %.6g max rel %.6g%s%s\n", mabs, mrel,
                   p->dtype != q->dtype ? " (dtypes differ)" : "", bad ? " DIFFERS" : "");
        }
    }
    for (int i = 0; i < y.n; i++)
        if (!tf_set_find(&x, y.t[i].name)) {
            cli_put_escaped(stdout, y.t[i].name);
            printf(": only in %s\n", b);
            differ = 1;
        }
    printf("%d tensors compared, %d differ beyond %g (max abs %.6g)%s\n", x.n, ndiff, tol, worst,
           differ ? "; names or shapes differ" : "");
    tf_set_free(&x);
    tf_set_free(&y);
    return differ || ndiff ? 1 : 0;
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    static const struct option opts[] = {{"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {"net", required_argument, 0, 'n'},
                                         {"tol", required_argument, 0, 't'},
                                         {"all", no_argument, 0, 'a'},
                                         {"summary", no_argument, 0, 's'},
                                         {"no-check", no_argument, 0, 'c'},
                                         {"dtype", required_argument, 0, 'd'},
                                         {"set", required_argument, 0, 'S'},
                                         {"json", no_argument, 0, 'j'},
                                         {0, 0, 0, 0}};
    const char *net = NULL;
    double tol = 0;
    int all = 0, summary = 0, check = 1, json = 0, c;
    st_dtype dt = KEEP_DTYPE;
    char **sets = calloc((size_t)argc, sizeof *sets); /* the --set values, at most one per argument */
    int nsets = 0;
    if (!sets)
        die("out of memory");
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': usage(stdout, 0); break;
        case 'V': cli_version(); break;
        case 'n': net = optarg; break;
        case 't': tol = cli_double("--tol", optarg, 0, INFINITY); break;
        case 'a': all = 1; break;
        case 'S':
            if (!strchr(optarg, '=') || optarg[0] == '=')
                cli_usage_error("--set: expected KEY=VALUE, got '%s'", optarg);
            sets[nsets++] = optarg;
            break;
        case 's': summary = 1; break;
        case 'c': check = 0; break;
        case 'j': json = 1; break;
        case 'd':
            dt = !strcmp(optarg, "f32")    ? ST_F32
                 : !strcmp(optarg, "f16")  ? ST_F16
                 : !strcmp(optarg, "bf16") ? ST_BF16
                                           : KEEP_DTYPE;
            if (dt == KEEP_DTYPE)
                cli_usage_error("--dtype: expected f32, f16 or bf16, got '%s'", optarg);
            break;
        default: usage(stderr, 2);
        }
    }
    if (optind >= argc)
        cli_usage_error("a command is required (info, import, export, extract, diff, meta)");
    const char *cmd = argv[optind], **f = (const char **)argv + optind + 1;
    int nf = argc - optind - 1, rc;
    if (!strcmp(cmd, "info") && nf == 1)
        rc = cmd_info(f[0], summary);
    else if (!strcmp(cmd, "import") && nf == 2)
        rc = cmd_import(f[0], f[1], check);
    else if (!strcmp(cmd, "export") && nf == 2)
        rc = cmd_export(f[0], f[1], check);
    else if (!strcmp(cmd, "extract") && nf == 2 && net)
        rc = cmd_extract(net, dt, f[0], f[1]);
    else if (!strcmp(cmd, "meta") && nsets && nf == 2)
        rc = cmd_set_meta(sets, nsets, f[0], f[1]);
    else if (!strcmp(cmd, "meta") && nsets)
        cli_usage_error("meta --set needs IN and OUT");
    else if (!strcmp(cmd, "meta") && (nf == 1 || nf == 2))
        rc = cmd_meta(f[0], nf == 2 ? f[1] : NULL, json);
    else if (!strcmp(cmd, "diff") && nf == 2)
        rc = cmd_diff(f[0], f[1], tol, all);
    else if (!strcmp(cmd, "extract") && nf == 2)
        cli_usage_error("extract needs --net NAME");
    else
        cli_usage_error("bad command or number of files: '%s' with %d file(s)", cmd, nf);
    err_close_stdout();
    free(sets);
    return rc;
}
