/*
 * tfevents: TFRecord framing and the few protobuf fields of Event/Summary.
 */
#include "tfevents.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/err.h"

struct tfevents {
    FILE *f;
    char *path;
};

uint32_t tfevents_crc32c(const void *data, size_t n)
{
    static uint32_t table[256];
    if (!table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
            table[i] = c;
        }
    const uint8_t *p = data;
    uint32_t c = 0xffffffffu;
    while (n--)
        c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static uint32_t masked_(const void *data, size_t n)
{
    uint32_t c = tfevents_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* A growable byte buffer for one protobuf message (an image summary holds
 * a whole PNG); overflow = out of memory, reported when the event is written. */
typedef struct {
    uint8_t *b;
    size_t n, cap;
    int overflow;
} pbuf;

static void put_(pbuf *p, const void *d, size_t n)
{
    if (p->overflow)
        return;
    if (p->n + n > p->cap) {
        size_t cap = p->cap ? p->cap : 256;
        while (cap < p->n + n)
            cap *= 2;
        uint8_t *b = realloc(p->b, cap);
        if (!b) {
            p->overflow = 1;
            return;
        }
        p->b = b;
        p->cap = cap;
    }
    if (n)
        memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void pbuf_free_(pbuf *p)
{
    free(p->b);
    *p = (pbuf){0};
}

static void varint_(pbuf *p, uint64_t v)
{
    uint8_t tmp[10];
    int k = 0;
    do {
        tmp[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put_(p, tmp, (size_t)k);
}

static void key_(pbuf *p, int field, int wire)
{
    varint_(p, (uint64_t)(field << 3 | wire));
}

static void bytes_(pbuf *p, int field, const void *d, size_t n)
{
    key_(p, field, 2);
    varint_(p, n);
    put_(p, d, n);
}

static void le_(pbuf *p, uint64_t v, int nbytes)
{
    uint8_t tmp[8];
    for (int i = 0; i < nbytes; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    put_(p, tmp, (size_t)nbytes);
}

static double now_(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

/* Event: 1 wall_time (double), 2 step (int64), then 3 file_version or 5 summary. */
static int write_event_(tfevents *t, int64_t step, const pbuf *body, int body_field)
{
    pbuf ev = {0};
    double wt = now_();
    uint64_t bits;
    memcpy(&bits, &wt, sizeof bits);
    key_(&ev, 1, 1);
    le_(&ev, bits, 8);
    key_(&ev, 2, 0);
    varint_(&ev, (uint64_t)step);
    bytes_(&ev, body_field, body->b, body->n);
    if (ev.overflow || body->overflow) {
        pbuf_free_(&ev);
        return err_set("tensorboard: out of memory");
    }
    uint8_t head[12];
    uint64_t len = ev.n;
    for (int i = 0; i < 8; i++)
        head[i] = (uint8_t)(len >> (8 * i));
    uint32_t c1 = masked_(head, 8), c2 = masked_(ev.b, ev.n);
    for (int i = 0; i < 4; i++)
        head[8 + i] = (uint8_t)(c1 >> (8 * i));
    uint8_t tail[4];
    for (int i = 0; i < 4; i++)
        tail[i] = (uint8_t)(c2 >> (8 * i));
    int bad = fwrite(head, 1, 12, t->f) != 12 || fwrite(ev.b, 1, ev.n, t->f) != ev.n ||
              fwrite(tail, 1, 4, t->f) != 4 || fflush(t->f) != 0;
    pbuf_free_(&ev);
    return bad ? err_set("%s:", t->path) : 0;
}

tfevents *tfevents_open(const char *dir)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        err_set("%s:", dir);
        return NULL;
    }
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    tfevents *t = calloc(1, sizeof *t);
    size_t n = strlen(dir) + 160;
    t->path = malloc(n);
    snprintf(t->path, n, "%s/events.out.tfevents.%ld.%s.%ld.aging", dir, (long)now_(), host, (long)getpid());
    if (!(t->f = fopen(t->path, "wb"))) {
        err_set("%s:", t->path);
        tfevents_close(t);
        return NULL;
    }
    pbuf v = {0};
    put_(&v, "brain.Event:2", 13);
    int rc = write_event_(t, 0, &v, 3);
    pbuf_free_(&v);
    if (rc != 0) {
        tfevents_close(t);
        return NULL;
    }
    return t;
}

int tfevents_scalar(tfevents *t, const char *tag, int64_t step, double value)
{
    /* Summary { 1: Value { 1: tag, 2: simple_value (float) } } */
    pbuf val = {0}, sum = {0};
    float f = (float)value;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    bytes_(&val, 1, tag, strlen(tag));
    key_(&val, 2, 5);
    le_(&val, bits, 4);
    bytes_(&sum, 1, val.b, val.n);
    if (val.overflow)
        sum.overflow = 1;
    int rc = write_event_(t, step, &sum, 5);
    pbuf_free_(&val);
    pbuf_free_(&sum);
    return rc;
}

int tfevents_image(tfevents *t, const char *tag, int64_t step, const void *png, size_t n, int w, int h)
{
    /* Summary { 1: Value { 1: tag, 4: Image { 1: height, 2: width, 3: colorspace (3 = RGB),
     * 4: encoded_image_string } } } */
    pbuf img = {0}, val = {0}, sum = {0};
    key_(&img, 1, 0);
    varint_(&img, (uint64_t)h);
    key_(&img, 2, 0);
    varint_(&img, (uint64_t)w);
    key_(&img, 3, 0);
    varint_(&img, 3);
    bytes_(&img, 4, png, n);
    bytes_(&val, 1, tag, strlen(tag));
    bytes_(&val, 4, img.b, img.n);
    bytes_(&sum, 1, val.b, val.n);
    if (img.overflow || val.overflow)
        sum.overflow = 1;
    int rc = write_event_(t, step, &sum, 5);
    pbuf_free_(&img);
    pbuf_free_(&val);
    pbuf_free_(&sum);
    return rc;
}

int tfevents_close(tfevents *t)
{
    if (!t)
        return 0;
    int rc = 0;
    if (t->f && fclose(t->f) != 0)
        rc = err_set("%s:", t->path);
    free(t->path);
    free(t);
    return rc;
}
