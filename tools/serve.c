/*
 * serve: the web demo.  An HTTP server (libmicrohttpd) with one
 * self-contained page at /, GET /api/health and POST /api/translate.
 *
 * Two kinds of threads: libmicrohttpd's small pool does the HTTP (headers,
 * uploads, the header-only size checks, replies) and never waits for the
 * model; --threads inference workers each own a CPU backend with both
 * generators, loaded once at start-up (infer is not thread-safe: one per
 * thread).  An upload that passes the checks is suspended and queued; the
 * first free worker decodes, translates and encodes it, then resumes the
 * connection, which sends the PNG.  So the page and /api/health answer at
 * once however busy the workers are; smaller uploads are served first.
 *
 * Face search (--face, and face= per request; lib/face/face.h): a photo that is
 * not already a face crop has its faces found, aligned, translated and
 * blended back, and the whole photo is the answer.  The one dlib finder is
 * shared by the workers, which search in parallel (each thread has its own
 * detector), each search within --face-time seconds.
 *
 * Hostile clients (lib/tool/httpguard.h): each request has --request-timeout
 * seconds in all to send its headers and body, and while most connection
 * slots are taken the longest-reading requests are closed, so the page and
 * /api/health keep answering under a slowloris from many addresses.  The
 * upload bytes held at once are bounded by --max-queued (503 with
 * Retry-After beyond it), and large buffers are mmapped, so memory goes
 * back to the system after a burst.
 */
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <omp.h>

#include "backend/backend.h"
#include "tool/cli.h"
#include "tool/device.h"
#include "tool/httpguard.h"
#include "base/err.h"
#include "face/face.h"
#include "image/image-probe.h"
#include "image/image.h"
#include "nn/infer.h"
#include "tool/models.h"
#include "face/paste.h"
#include "image/photo.h"
#include "image/transform.h"
#include "tool/web-page.h"

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: serve [options]\n"
               "Web demo: a page to age or de-age a face, and a JSON/PNG API.\n\n"
               "  --ckpt FILE        checkpoint with G and F (default: outputs/checkpoints/best.safetensors\n"
               "                     when it exists, else the shipped model, models/" MODELS_SHIPPED ")\n"
               "  --host ADDR        address to listen on (default 127.0.0.1)\n"
               "  --port N           TCP port, 0 = any free one (default 7860)\n"
               "  --size N           image size (default: the model's training size); faces are\n"
               "                     resized to N*306/256 and centre-cropped to N, as in training\n"
               "                     (a picture that is not square: its central square); the answer\n"
               "                     is the picture at its own size with the generator's change\n"
               "  --threads N        inference workers, each with its own generators (default 2)\n"
               "  --max-upload BYTES largest request body (default 8388608)\n"
               "  --max-pixels N     largest decoded image, width x height (default 25000000)\n"
               "  --timeout S        close a connection idle for S seconds, e.g. a client that\n"
               "                     sends its request slowly (default 10)\n"
               "  --max-connections N   open connections in all (default 512)\n"
               "  --max-per-client N    open connections from one IP address, 0 = no limit\n"
               "                     (default 32; raise it behind a reverse proxy)\n"
               "  --request-timeout S   time a request has to send its headers and body, in all\n"
               "                     (default 30); while over 3/4 of the connections are taken,\n"
               "                     the requests reading longest are closed to make room\n"
               "  --max-queued BYTES upload bytes held at once, being read or waiting for a\n"
               "                     worker; beyond it 503 with Retry-After (default 67108864; an\n"
               "                     upload over a 16th of it may fill only 3/4 of it)\n"
               "  --face-time S      time limit of one face search (default 1): a photo whose\n"
               "                     upright search finds nothing gets the rotated and upsampled\n"
               "                     searches only while time is left\n"
               "  --device D         cpu, cuda, cuda:N or auto (default: $AGING_DEVICE, else auto)\n"
               "  --precision P      fp32, bf16 or fp16 convolutions (bf16 on the CPU's bf16 units\n"
               "                     when it has them), or auto: bf16 on a GPU, fp32 on the CPU\n"
               "                     (default fp32)\n"
               "  --face MODE        auto: find the faces of photos that are not face crops and answer\n"
               "                     the whole photo with them changed (default; needs dlib); on: always\n"
               "                     (422 when there is none); off: every picture as a face crop.\n"
               "                     At most 16 faces, the largest, are changed; the header\n"
               "                     X-Faces-Skipped says how many more were left unchanged\n"
               "  -q, --quiet        no log line per request\n"
               "  --help, --version\n\n"
               "  GET  /                 the page\n"
               "  GET  /api/health       model and limits as JSON\n"
               "  POST /api/translate?direction=young2old|old2young[&face=auto|on|off][&strength=S][&raw=1]\n"
               "                         JPEG/PNG body -> image/png at its size; S scales the change,\n"
               "                         0 (none) to 2 (default 1; above 1 halos and artefacts grow too);\n"
               "                         raw=1: the generator's own N x N image (translate --raw)\n"
               "Errors are JSON {\"error\": ...} with status 400, 404, 405, 413, 415, 422, 500 or 503.\n"
               "Log lines escape control bytes (\\n, \\ooo) as ls -b does.\n");
    exit(status);
}

enum { DIR_Y2O, DIR_O2Y };
enum { FACE_MODE_OFF, FACE_MODE_AUTO, FACE_MODE_ON };
enum { ROUTE_PAGE = 1, ROUTE_HEALTH, ROUTE_TRANSLATE };

struct server;

struct worker {
    struct server *S;
    backend_t be;
    infer *g[2]; /* [DIR_Y2O] = G, [DIR_O2Y] = F */
    pthread_t tid;
};

/* One per request (MHD's con_cls), freed when the request completes. */
struct req {
    int route, dir, face, status, too_big, state;
    float strength; /* of the change, 0 to PASTE_MAX_STRENGTH */
    int raw;        /* raw=1: the generator's own size x size image */
    uint8_t *body;  /* the upload, then the PNG once done */
    size_t n, cap;
    size_t held; /* bytes of body counted in server.held */
    int full;    /* refused: --max-queued reached (503) */
    int skipped; /* faces over the limit, left unchanged */
    void *slot;  /* the connection's httpguard slot */
    struct MHD_Connection *conn;
    struct req *next; /* job queue */
    struct timespec t0;
    char what[96];    /* method and path for the log line */
    char msg[512];    /* the error, when a worker fails */
    char timing[128]; /* Server-Timing */
};
enum { REQ_READING, REQ_QUEUED, REQ_DONE };

struct server {
    struct worker *w;
    int nw, omp_threads, size, resize, quiet;
    unsigned timeout_s, max_conns, max_per_ip; /* connection limits (slow clients) */
    size_t max_upload, max_queued;
    long max_pixels;
    double face_time; /* s, per search */
    httpguard *guard;
    char *health;    /* JSON, built once */
    int face;        /* FACE_MODE_*: the default for requests */
    face_finder *ff; /* NULL: no face search */
    /* the job queue and its workers; mu guards everything below */
    pthread_mutex_t mu;
    pthread_cond_t work, idle;
    struct req *head, *tail;
    int running, active, stopping, quit, ready;
    size_t held, peak; /* upload and reply bytes held; the most since memory was given back */
};

#define SERVE_MAX_FACES 16

/* Count r's buffer as cap bytes: 0, or -1 when that would take the bytes
 * held past --max-queued (force: count them anyway, for a reply). */
static int hold(struct server *S, struct req *r, size_t cap, int force)
{
    int ok = 0;
    pthread_mutex_lock(&S->mu);
    /* Big uploads get 3/4 of the budget, so that ordinary photos (up to a
     * 16th of it) still find room while big ones fill it. */
    size_t limit = cap > S->max_queued / 16 ? S->max_queued / 4 * 3 : S->max_queued;
    if (cap > r->held && S->held - r->held + cap > limit && !force)
        ok = -1;
    else {
        S->held = S->held - r->held + cap;
        r->held = cap;
        if (S->held > S->peak)
            S->peak = S->held;
    }
    pthread_mutex_unlock(&S->mu);
    return ok;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1e3 + (t.tv_nsec - t0->tv_nsec) / 1e6;
}

// ----------------------------------------------------------------------------
// responses

static enum MHD_Result reply(struct MHD_Connection *c, struct req *r, int status, const char *type,
                             void *data, size_t n, enum MHD_ResponseMemoryMode mode, const char *extra_name,
                             const char *extra_value)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, data, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (extra_name)
        MHD_add_response_header(resp, extra_name, extra_value);
    if (r && r->skipped) {
        char v[16];
        snprintf(v, sizeof v, "%d", r->skipped);
        MHD_add_response_header(resp, "X-Faces-Skipped", v);
    }
    if (r)
        r->status = status;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, struct req *r, int status,
                                   const char *extra_name, const char *extra_value, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* {"error": "..."} with the given status. */
static enum MHD_Result reply_error(struct MHD_Connection *c, struct req *r, int status,
                                   const char *extra_name, const char *extra_value, const char *fmt, ...)
{
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    char *s = NULL;
    if (o && cJSON_AddStringToObject(o, "error", msg))
        s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s)
        return MHD_NO;
    /* cJSON allocates with malloc by default, so MHD may free() it. */
    return reply(c, r, status, "application/json", s, strlen(s), MHD_RESPMEM_MUST_FREE, extra_name,
                 extra_value);
}

// ----------------------------------------------------------------------------
// the translation itself

/* Header-only checks, in the HTTP thread: a status >= 400 with err_msg()
 * set, or 0 when the upload may go to a worker. */
static int check_body(struct server *S, const struct req *r)
{
    int w, h;
    const char *fmt = "";
    if (r->n == 0) {
        err_set("empty body: POST the JPEG or PNG bytes");
        return 400;
    }
    if (image_probe(r->body, r->n, &w, &h, &fmt) != 0)
        return 400;
    if ((long)w * h > S->max_pixels) {
        err_set("image too large: %dx%d is %ld pixels, the limit is %ld", w, h, (long)w * h, S->max_pixels);
        return 413;
    }
    return 0;
}

static int face_gen(void *ctx, const float *x, float *y, int size)
{
    return infer_run(ctx, x, y, size, size);
}

/* A picture that is already a face crop: its largest face's aligned frame
 * spans most of it (a UTKFace crop: about all of it). */
static int is_face_crop(const image *im, const face *f)
{
    int lo = im->w < im->h ? im->w : im->h;
    return f->scale * FACE_FRAME >= 0.7 * lo;
}

/* The photo way, as translate --face does it: 0 when the picture goes the
 * crop way instead (no face found in auto mode, or already a face crop),
 * else the HTTP status, with r->body the PNG of the whole photo on 200. */
static int face_body(struct server *S, struct worker *wk, struct req *r, const struct timespec *t0)
{
    photo p;
    face *faces = NULL;
    uint8_t *png;
    size_t len;
    int status = 500, nf;
    if (photo_decode(&p, r->body, r->n, S->max_pixels) != 0)
        return 400;
    int late = 0;
    nf = face_find_until(S->ff, &p.im, INT_MAX, S->face_time, &faces, &late);
    if (nf > SERVE_MAX_FACES) {
        r->skipped = nf - SERVE_MAX_FACES;
        nf = SERVE_MAX_FACES;
    }
    double t_find = ms_since(t0);
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (nf < 0)
        goto out;
    if (nf == 0 && r->face == FACE_MODE_ON) {
        err_set(late ? "no face found in the picture within the search's time limit"
                     : "no face found in the picture");
        status = 422;
        goto out;
    }
    if (nf == 0 || (r->face == FACE_MODE_AUTO && is_face_crop(&p.im, &faces[0]))) {
        status = 0;
        goto out;
    }
    if (face_apply(&p.im, faces, nf, S->size, S->resize, face_gen, wk->g[r->dir], r->strength) != 0 ||
        photo_encode(&p, false, &png, &len) != 0)
        goto out;
    snprintf(r->timing, sizeof r->timing, "face;dur=%.1f;desc=\"%d\", infer;dur=%.1f, total;dur=%.1f", t_find,
             nf, ms_since(&t1), ms_since(t0));
    free(r->body);
    r->body = png;
    r->n = r->cap = len;
    hold(S, r, len, 1);
    status = 200;
out:
    photo_free(&p);
    free(faces);
    return status;
}

/* The upload at its own size, as translate does it (lib/face/paste.h: its
 * central square through the generator, the change pasted back), or raw,
 * the generator's own image; on success r->body holds the PNG.  Returns
 * the HTTP status, with r->msg set when it is not 200. */
static int translate_body(struct server *S, struct worker *wk, struct req *r)
{
    int status = 500;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    photo p = {0};
    uint8_t *png = NULL;
    size_t len = 0;
    double t_dec, t_inf;
    if (r->face != FACE_MODE_OFF && !r->raw && S->ff && (status = face_body(S, wk, r, &t0)) != 0) {
        if (status != 200)
            snprintf(r->msg, sizeof r->msg, "%s", err_msg());
        return status;
    }
    status = 500;
    if (photo_decode(&p, r->body, r->n, S->max_pixels) != 0) {
        status = 400;
        goto out;
    }
    t_dec = ms_since(&t0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    paste_job j = {.size = S->size,
                   .resize = S->resize,
                   .gen = face_gen,
                   .ctx = wk->g[r->dir],
                   .strength = r->strength,
                   .raw = r->raw};
    /* a PNG at strength 0 is its own answer, byte for byte, as in translate */
    bool same = paste_photo_unchanged(&j, &p, false);
    if (!same && paste_photo_apply(&j, &p) != 0)
        goto out;
    t_inf = ms_since(&t1);
    if (!same && photo_encode(&p, false, &png, &len) != 0)
        goto out;
    snprintf(r->timing, sizeof r->timing, "decode;dur=%.1f, infer;dur=%.1f, total;dur=%.1f", t_dec, t_inf,
             ms_since(&t0));
    if (!same) {
        free(r->body);
        r->body = png;
        r->n = r->cap = len;
        hold(S, r, len, 1);
    }
    status = 200;
out:
    if (status != 200)
        snprintf(r->msg, sizeof r->msg, "%s", err_msg());
    photo_free(&p);
    return status;
}

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct server *S = wk->S;
    omp_set_num_threads(S->omp_threads); /* this thread's teams: the workers share the cores */
    if (S->ff) {
        /* Build this thread's face detector now, not in the first request. */
        static uint8_t blank[64 * 64];
        image im = {.w = 64, .h = 64, .c = 1, .px = blank};
        face *f = NULL;
        face_find_until(S->ff, &im, 1, 0.001, &f, NULL);
        free(f);
    }
    pthread_mutex_lock(&S->mu);
    S->ready++;
    pthread_cond_broadcast(&S->idle);
    for (;;) {
        while (!S->head && !S->quit)
            pthread_cond_wait(&S->work, &S->mu);
        if (!S->head)
            break;
        struct req *r = S->head;
        S->head = r->next;
        if (!S->head)
            S->tail = NULL;
        S->running++;
        pthread_mutex_unlock(&S->mu);
        r->status = translate_body(S, wk, r);
        r->state = REQ_DONE;
        /* r may be freed as soon as its connection is resumed.  running drops
         * only after that, so server_drain never stops the daemon first. */
        MHD_resume_connection(r->conn);
        pthread_mutex_lock(&S->mu);
        S->running--;
        pthread_cond_broadcast(&S->idle);
    }
    pthread_mutex_unlock(&S->mu);
    return NULL;
}

/* Queue r for a worker, the connection suspended until it is done; 0, or
 * 503 while the server is stopping. */
static int enqueue(struct server *S, struct MHD_Connection *c, struct req *r)
{
    pthread_mutex_lock(&S->mu);
    if (S->stopping) {
        pthread_mutex_unlock(&S->mu);
        return 503;
    }
    /* Suspend before a worker can see it, so its resume always comes after. */
    MHD_suspend_connection(c);
    r->conn = c;
    r->state = REQ_QUEUED;
    /* Smaller uploads first (after those of their size or less): a face
     * photo is not kept waiting behind a run of 8 MiB uploads. */
    struct req **at = &S->head;
    while (*at && (*at)->n <= r->n)
        at = &(*at)->next;
    r->next = *at;
    *at = r;
    if (!r->next)
        S->tail = r;
    pthread_cond_signal(&S->work);
    pthread_mutex_unlock(&S->mu);
    return 0;
}

// ----------------------------------------------------------------------------
// MHD callbacks

static int route_of(const char *url)
{
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
        return ROUTE_PAGE;
    if (strcmp(url, "/api/health") == 0)
        return ROUTE_HEALTH;
    if (strcmp(url, "/api/translate") == 0)
        return ROUTE_TRANSLATE;
    return 0;
}

/* 503: the uploads held have reached --max-queued. */
static enum MHD_Result reply_full(struct MHD_Connection *c, struct req *r, struct server *S)
{
    r->full = 1;
    return reply_error(c, r, 503, "Retry-After", "5",
                       "busy: the uploads being read or waiting reach the server's limit of %zu bytes; try "
                       "again in a few seconds",
                       S->max_queued);
}

/* First call for a request: route it, answer what needs no body. */
static enum MHD_Result on_headers(struct server *S, struct MHD_Connection *c, struct req *r,
                                  const char *method)
{
    int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    switch (r->route) {
    case ROUTE_PAGE:
    case ROUTE_HEALTH:
        if (!get)
            return reply_error(c, r, 405, "Allow", "GET, HEAD", "method %s not allowed here; use GET",
                               method);
        if (r->route == ROUTE_HEALTH)
            return reply(c, r, 200, "application/json", S->health, strlen(S->health), MHD_RESPMEM_PERSISTENT,
                         NULL, NULL);
        return reply(
            c, r, 200, "text/html; charset=utf-8", (void *)web_page_html, strlen(web_page_html),
            MHD_RESPMEM_PERSISTENT, "Content-Security-Policy",
            "default-src 'none'; img-src 'self' blob: data:; style-src 'unsafe-inline'; "
            "script-src 'unsafe-inline'; connect-src 'self' blob:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'");
    case ROUTE_TRANSLATE: break;
    default: return reply_error(c, r, 404, NULL, NULL, "not found");
    }
    if (strcmp(method, "POST") != 0)
        return reply_error(c, r, 405, "Allow", "POST", "method %s not allowed here; POST the image", method);
    const char *d = NULL;
    size_t dn = 0;
    /* With its length: "young2old%00junk" must not pass as "young2old". */
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "direction", 9, &d, &dn) != MHD_YES)
        d = NULL;
    if (!d || strlen(d) != dn || (strcmp(d, "young2old") != 0 && strcmp(d, "old2young") != 0))
        return reply_error(c, r, 400, NULL, NULL, "direction must be young2old or old2young, got '%s'",
                           d ? d : "(none)");
    r->dir = strcmp(d, "young2old") == 0 ? DIR_Y2O : DIR_O2Y;
    r->face = S->face;
    int face_on = 0; /* the request asks for face=on */
    r->strength = 1;
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "strength", 8, &d, &dn) == MHD_YES && d) {
        char *end;
        double v = strtod(d, &end);
        if (strlen(d) != dn || end == d || *end || !(v >= 0 && v <= PASTE_MAX_STRENGTH))
            return reply_error(c, r, 400, NULL, NULL, "strength must be a number from 0 to %g, got '%s'",
                               PASTE_MAX_STRENGTH, d);
        r->strength = (float)v;
    }
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "face", 4, &d, &dn) == MHD_YES && d) {
        if (strlen(d) != dn || (strcmp(d, "auto") != 0 && strcmp(d, "on") != 0 && strcmp(d, "off") != 0))
            return reply_error(c, r, 400, NULL, NULL, "face must be auto, on or off, got '%s'", d);
        r->face = d[1] == 'u' ? FACE_MODE_AUTO : d[1] == 'n' ? FACE_MODE_ON : FACE_MODE_OFF;
        face_on = r->face == FACE_MODE_ON;
        if (r->face == FACE_MODE_ON && !S->ff)
            return reply_error(c, r, 400, NULL, NULL,
                               "face=on: this server has no face search (built without dlib)");
    }
    if (MHD_lookup_connection_value_n(c, MHD_GET_ARGUMENT_KIND, "raw", 3, &d, &dn) == MHD_YES && d) {
        if (strlen(d) != dn || (strcmp(d, "0") != 0 && strcmp(d, "1") != 0))
            return reply_error(c, r, 400, NULL, NULL, "raw must be 0 or 1, got '%s'", d);
        r->raw = d[0] == '1';
    }
    /* as translate's --raw: the generator's own image of the picture as a face crop */
    if (r->raw && r->strength != 1)
        return reply_error(c, r, 400, NULL, NULL,
                           "strength scales the change in a full-size result: not with raw=1");
    if (r->raw && face_on)
        return reply_error(c, r, 400, NULL, NULL,
                           "raw=1 is the generator's own image of a face crop: not with face=on");
    /* A form upload (curl -F, an HTML form) wraps the picture in MIME parts. */
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (ct && strncasecmp(ct, "multipart/", 10) == 0)
        return reply_error(c, r, 415, NULL, NULL,
                           "a multipart form upload: POST the JPEG or PNG bytes themselves as the body "
                           "(curl --data-binary @face.jpg, not -F)");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end != cl && v > S->max_upload)
            return reply_error(c, r, 413, NULL, NULL, "upload too large: %llu bytes, the limit is %zu", v,
                               S->max_upload);
        if (end != cl && v > 0 && hold(S, r, (size_t)v, 0) != 0)
            return reply_full(c, r, S);
        if (end != cl && v > 0 && (r->body = malloc((size_t)v)))
            r->cap = (size_t)v;
    }
    return MHD_YES; /* now read the body */
}

/* Append a body chunk, keeping at most max_upload bytes: past it the rest is
 * read and dropped, and the answer is 413 (chunked uploads have no length). */
static void take_chunk(struct server *S, struct req *r, const char *data, size_t n)
{
    if (r->full || r->too_big || n > S->max_upload - r->n) {
        if (!r->full)
            r->too_big = 1;
        free(r->body);
        r->body = NULL;
        r->n = r->cap = 0;
        hold(S, r, 0, 1);
        return;
    }
    if (r->n + n > r->cap) {
        size_t cap = r->cap ? r->cap : 65536;
        while (cap < r->n + n)
            cap *= 2;
        if (cap > S->max_upload)
            cap = S->max_upload;
        if (hold(S, r, cap, 0) != 0) {
            r->full = 1; /* a chunked upload past --max-queued: 503 once it is read */
            free(r->body);
            r->body = NULL;
            r->n = r->cap = 0;
            hold(S, r, 0, 1);
            return;
        }
        uint8_t *b = realloc(r->body, cap);
        if (!b) {
            r->too_big = 1; /* treated as over the limit: memory is the limit */
            return;
        }
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->n, data, n);
    r->n += n;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct server *S = cls;
    struct req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *con_cls = r;
        pthread_mutex_lock(&S->mu);
        S->active++;
        pthread_mutex_unlock(&S->mu);
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        snprintf(r->what, sizeof r->what, "%s %s", method, url);
        r->route = route_of(url);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        r->slot = ci ? ci->socket_context : NULL;
        enum MHD_Result ret = on_headers(S, c, r, method);
        /* answered at once (status set), or the body is to come */
        httpguard_state(S->guard, r->slot, r->status ? HTTPGUARD_DONE : HTTPGUARD_BODY);
        return ret;
    }
    if (*upload_data_size) {
        take_chunk(S, r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->state == REQ_DONE) {
        if (r->status != 200)
            return reply_error(c, r, r->status, NULL, NULL, "%s", r->msg);
        uint8_t *png = r->body;
        r->body = NULL;
        /* r->held stays counted until the request completes and MHD frees png */
        return reply(c, r, 200, "image/png", png, r->n, MHD_RESPMEM_MUST_FREE, "Server-Timing", r->timing);
    }
    httpguard_state(S->guard, r->slot, HTTPGUARD_DONE); /* the whole request is read */
    if (r->full)
        return reply_full(c, r, S);
    if (r->too_big)
        return reply_error(c, r, 413, NULL, NULL, "upload too large: over the limit of %zu bytes",
                           S->max_upload);
    int status = check_body(S, r);
    if (status == 0 && (status = enqueue(S, c, r)) == 0)
        return MHD_YES;
    if (status == 503)
        return reply_error(c, r, 503, NULL, NULL, "the server is shutting down");
    return reply_error(c, r, status, NULL, NULL, "%s", err_msg());
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    struct server *S = cls;
    struct req *r = *con_cls;
    if (!r)
        return;
    if (!S->quiet) {
        /* the path is the client's: escaped, so "GET /%0aserve: ..." cannot forge a line */
        flockfile(stderr);
        fprintf(stderr, "%s: ", err_progname());
        cli_put_escaped(stderr, r->what);
        fprintf(stderr, " -> %d%s (%.0f ms)\n", r->status,
                toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " aborted", ms_since(&r->t0));
        funlockfile(stderr);
    }
    httpguard_state(S->guard, r->slot, HTTPGUARD_HEADERS); /* keep-alive: the next request's clock */
    free(r->body);
    hold(S, r, 0, 1);
    free(r);
    *con_cls = NULL;
    int trim = 0;
    pthread_mutex_lock(&S->mu);
    S->active--;
    /* After a burst, give the freed memory back (glibc keeps it otherwise). */
    if (S->held == 0 && S->peak > (16u << 20)) {
        S->peak = 0;
        trim = 1;
    }
    pthread_cond_broadcast(&S->idle);
    pthread_mutex_unlock(&S->mu);
    if (trim)
        malloc_trim(0);
}

/* Every connection, from accept to close, is watched by the guard. */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct server *S = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? httpguard_add(S->guard, ci->connect_fd) : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        httpguard_remove(S->guard, *socket_context);
        *socket_context = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && buf[n - 1] == '\n')
        buf[--n] = 0;
    flockfile(stderr);
    fprintf(stderr, "%s: libmicrohttpd: ", err_progname());
    cli_put_escaped(stderr, buf); /* it may quote what a client sent */
    fputc('\n', stderr);
    funlockfile(stderr);
}

// ----------------------------------------------------------------------------
// start-up and shut-down

/* precision < 0: --precision auto */
static void server_load(struct server *S, const char *ckpt, const char *device, int precision, int nw)
{
    S->w = calloc((size_t)nw, sizeof *S->w);
    if (!S->w)
        die("out of memory");
    for (int i = 0; i < nw; i++, S->nw++) {
        struct worker *w = &S->w[i];
        w->be =
            device_open_precision(device, precision < 0 ? BACKEND_FP32 : (enum backend_precision)precision);
        if (w->be && precision < 0)
            backend_set_precision(w->be, device_inference_precision(w->be));
        if (!w->be || !(w->g[DIR_Y2O] = infer_open(ckpt, "G.", w->be)) ||
            !(w->g[DIR_O2Y] = infer_open(ckpt, "F.", w->be))) {
            infer_free(w->g[DIR_Y2O]);
            backend_free(w->be);
            die("%s", err_msg());
        }
        w->S = S;
    }
    int asked = S->size, trained, trained_resize;
    infer_framing(S->w[0].g[DIR_Y2O], &trained, &trained_resize);
    if (models_framing(S->w[0].g[DIR_Y2O], asked, &S->size, &S->resize))
        fprintf(stderr, "serve: note: running at --size %d; the model was trained at %d px\n", asked,
                trained);
    if (S->size % 4)
        die("%s: the model's training size %d is not a multiple of 4: give --size", ckpt, S->size);
    for (int i = 0; i < nw; i++)
        if (pthread_create(&S->w[i].tid, NULL, worker_main, &S->w[i]) != 0)
            die("cannot start a worker thread:");
    /* "listening" only once every worker has its face detector built */
    pthread_mutex_lock(&S->mu);
    while (S->ready < nw)
        pthread_cond_wait(&S->idle, &S->mu);
    pthread_mutex_unlock(&S->mu);
    int ngf = 0, blocks = 0;
    sscanf(infer_describe(S->w[0].g[DIR_Y2O]), "ngf=%d blocks=%d", &ngf, &blocks);
    const char *base = strrchr(ckpt, '/');
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    cJSON *m = cJSON_AddObjectToObject(o, "model");
    cJSON_AddStringToObject(m, "checkpoint", base ? base + 1 : ckpt);
    cJSON_AddNumberToObject(m, "ngf", ngf);
    cJSON_AddNumberToObject(m, "blocks", blocks);
    cJSON_AddNumberToObject(m, "size", S->size);
    cJSON_AddStringToObject(m, "device", backend_name(S->w[0].be));
    cJSON_AddStringToObject(m, "precision", backend_precision_name(backend_get_precision(S->w[0].be)));
    cJSON *dirs = cJSON_AddArrayToObject(o, "directions");
    cJSON_AddItemToArray(dirs, cJSON_CreateString("young2old"));
    cJSON_AddItemToArray(dirs, cJSON_CreateString("old2young"));
    cJSON_AddNumberToObject(o, "workers", nw);
    cJSON_AddNumberToObject(o, "max_upload", (double)S->max_upload);
    cJSON_AddNumberToObject(o, "max_pixels", (double)S->max_pixels);
    cJSON_AddStringToObject(o, "face",
                            !S->ff                      ? "unavailable"
                            : S->face == FACE_MODE_AUTO ? "auto"
                            : S->face == FACE_MODE_ON   ? "on"
                                                        : "off");
    cJSON_AddStringToObject(o, "version", AGING_VERSION);
    if (!(S->health = cJSON_PrintUnformatted(o)))
        die("out of memory");
    cJSON_Delete(o);
}

/* Once the HTTP side has stopped: end the workers and free everything. */
static void server_free(struct server *S)
{
    pthread_mutex_lock(&S->mu);
    S->quit = 1;
    pthread_cond_broadcast(&S->work);
    pthread_mutex_unlock(&S->mu);
    for (int i = 0; i < S->nw; i++)
        pthread_join(S->w[i].tid, NULL);
    for (int i = 0; i < S->nw; i++) {
        infer_free(S->w[i].g[DIR_Y2O]);
        infer_free(S->w[i].g[DIR_O2Y]);
        backend_free(S->w[i].be);
    }
    free(S->w);
    face_finder_free(S->ff);
    cJSON_free(S->health);
    pthread_mutex_destroy(&S->mu);
    pthread_cond_destroy(&S->work);
    pthread_cond_destroy(&S->idle);
}

/* After SIGINT/SIGTERM: refuse new jobs (503), finish the queued ones so no
 * connection stays suspended, give replies in flight up to 2 s to go out. */
static void server_drain(struct server *S)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += 2;
    pthread_mutex_lock(&S->mu);
    S->stopping = 1;
    while (S->head || S->running)
        pthread_cond_wait(&S->idle, &S->mu);
    while (S->active && pthread_cond_timedwait(&S->idle, &S->mu, &end) == 0)
        ;
    pthread_mutex_unlock(&S->mu);
}

/* HTTP threads: they only parse, check and reply, so two are plenty.  They
 * poll (epoll where there is one) instead of owning a connection each, so a
 * slow client costs a connection slot, not a thread: the slots are bounded
 * in all and per client address, and idle ones are closed after
 * --timeout, so /api/health answers while slow clients hold connections. */
static struct MHD_Daemon *server_listen(struct server *S, const char *host, int port)
{
    const unsigned pool = 2;
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host, ps, &hints, &ai);
    if (rc != 0)
        die("--host %s: %s", host, gai_strerror(rc));
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, S, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT, S->max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, S->max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, S->timeout_s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, S, MHD_OPTION_NOTIFY_CONNECTION, on_connection, S,
        MHD_OPTION_THREAD_POOL_SIZE, pool, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!d)
        die("cannot listen on %s port %d", host, port);
    return d;
}

int main(int argc, char **argv)
{
    err_init(argv[0]);
    enum {
        O_CKPT = 256,
        O_HOST,
        O_PORT,
        O_SIZE,
        O_THREADS,
        O_MAXUP,
        O_MAXPX,
        O_TIMEOUT,
        O_MAXCONN,
        O_MAXPERIP,
        O_DEVICE,
        O_PRECISION,
        O_FACE,
        O_REQTIMEOUT,
        O_MAXQUEUED,
        O_FACETIME,
        O_VERSION
    };
    static const struct option opts[] = {{"ckpt", 1, 0, O_CKPT},
                                         {"host", 1, 0, O_HOST},
                                         {"port", 1, 0, O_PORT},
                                         {"size", 1, 0, O_SIZE},
                                         {"threads", 1, 0, O_THREADS},
                                         {"max-upload", 1, 0, O_MAXUP},
                                         {"max-pixels", 1, 0, O_MAXPX},
                                         {"timeout", 1, 0, O_TIMEOUT},
                                         {"max-connections", 1, 0, O_MAXCONN},
                                         {"max-per-client", 1, 0, O_MAXPERIP},
                                         {"device", 1, 0, O_DEVICE},
                                         {"precision", 1, 0, O_PRECISION},
                                         {"quiet", 0, 0, 'q'},
                                         {"help", 0, 0, 'h'},
                                         {"version", 0, 0, O_VERSION},
                                         {"face", 1, 0, O_FACE},
                                         {"request-timeout", 1, 0, O_REQTIMEOUT},
                                         {"max-queued", 1, 0, O_MAXQUEUED},
                                         {"face-time", 1, 0, O_FACETIME},
                                         {0, 0, 0, 0}};
    struct server S = {.max_upload = 8u << 20,
                       .max_queued = 64u << 20,
                       .face_time = 1,
                       .max_pixels = 25000000,
                       .face = FACE_MODE_AUTO,
                       .timeout_s = 10,
                       .max_conns = 512,
                       .max_per_ip = 32};
    double req_timeout = 30;
    int face_asked = 0;
    const char *ckpt = NULL, *host = "127.0.0.1", *device = NULL;
    int port = 7860, threads = 2, c, precision_auto = 0;
    enum backend_precision precision = BACKEND_FP32;
    while ((c = getopt_long(argc, argv, "hq", opts, NULL)) != -1) {
        switch (c) {
        case O_CKPT: ckpt = optarg; break;
        case O_HOST: host = optarg; break;
        case O_PORT: port = (int)cli_int("--port", optarg, 0, 65535); break;
        case O_SIZE: S.size = (int)cli_int("--size", optarg, 8, 4096); break;
        case O_THREADS: threads = (int)cli_int("--threads", optarg, 1, 64); break;
        case O_MAXUP: S.max_upload = (size_t)cli_int("--max-upload", optarg, 1, (int64_t)1 << 30); break;
        case O_MAXPX: S.max_pixels = (long)cli_int("--max-pixels", optarg, 1, IMAGE_MAX_PIXELS); break;
        case O_TIMEOUT: S.timeout_s = (unsigned)cli_int("--timeout", optarg, 1, 3600); break;
        case O_MAXCONN: S.max_conns = (unsigned)cli_int("--max-connections", optarg, 4, 100000); break;
        case O_MAXPERIP: S.max_per_ip = (unsigned)cli_int("--max-per-client", optarg, 0, 100000); break;
        case O_DEVICE:
            if (!device_known(optarg))
                cli_usage_error("--device: expected cpu, cuda, cuda:N or auto, got '%s'", optarg);
            device = optarg;
            break;
        case O_PRECISION:
            if (device_precision_arg(optarg, &precision, &precision_auto) != 0)
                cli_usage_error("--precision: expected fp32, bf16 or fp16 (or auto), got '%s'", optarg);
            break;
        case O_FACE:
            if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
                cli_usage_error("--face: expected auto, on or off, got '%s'", optarg);
            S.face = optarg[1] == 'u' ? FACE_MODE_AUTO : optarg[1] == 'n' ? FACE_MODE_ON : FACE_MODE_OFF;
            face_asked = 1;
            break;
        case O_REQTIMEOUT: req_timeout = cli_double("--request-timeout", optarg, 0.5, 3600); break;
        case O_MAXQUEUED: S.max_queued = (size_t)cli_int("--max-queued", optarg, 1, (int64_t)1 << 40); break;
        case O_FACETIME: S.face_time = cli_double("--face-time", optarg, 0.01, 3600); break;
        case 'q': S.quiet = 1; break;
        case 'h': usage(stdout, 0); break;
        case O_VERSION: cli_version();
        default: usage(stderr, 2);
        }
    }
    if (optind != argc)
        cli_usage_error("unexpected argument '%s'", argv[optind]);
    if (S.size % 4)
        cli_usage_error("--size must be a multiple of 4, got %d", S.size);

    /* SIGINT/SIGTERM are taken by sigwait below; MHD's threads inherit the mask. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_init(&S.mu, NULL);
    pthread_cond_init(&S.work, NULL);
    pthread_cond_init(&S.idle, NULL);
    if (S.face != FACE_MODE_OFF && !(S.ff = face_finder_open())) {
        if (face_asked && S.face == FACE_MODE_ON)
            die("--face on: %s", err_msg());
        fprintf(stderr, "serve: note: no face search, pictures are centre-cropped (%s)\n", err_msg());
    }
    S.omp_threads = omp_get_max_threads() / threads > 1 ? omp_get_max_threads() / threads : 1;
    char found[PATH_MAX];
    const char *what = NULL;
    if (!ckpt && !(ckpt = models_default(found, sizeof found, &what)))
        die("%s", err_msg());
    if (what)
        fprintf(stderr, "serve: using %s, %s\n", what, ckpt);
    server_load(&S, ckpt, device, precision_auto ? -1 : (int)precision, threads);
    /* Large buffers (uploads, photos) straight from mmap, so that freeing
     * one gives it back: glibc's adaptive threshold would keep them. */
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    /* The guard's dup of each socket doubles the descriptors a full server holds. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!(S.guard = httpguard_open(S.max_conns, req_timeout)))
        die("%s", err_msg());
    struct MHD_Daemon *d = server_listen(&S, host, port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int v6 = host && strchr(host, ':'); /* getopt's optarg is never NULL, but the analyser cannot know */
    fprintf(stderr, "%s: listening on http://%s%s%s:%u/ (%s, size %d, %d workers x %d threads)\n",
            err_progname(), v6 ? "[" : "", host, v6 ? "]" : "", di ? di->port : (unsigned)port,
            infer_describe(S.w[0].g[DIR_Y2O]), S.size, threads, S.omp_threads);
    int sig = 0;
    sigwait(&stop, &sig);
    fprintf(stderr, "%s: %s, stopping\n", err_progname(), sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_drain(&S);
    MHD_stop_daemon(d);
    httpguard_free(S.guard);
    server_free(&S);
    fprintf(stderr, "%s: stopped\n", err_progname());
    return 0;
}
