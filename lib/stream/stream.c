/*
 * stream: record streams over file descriptors (msgpack's streaming
 * unpacker, records concatenated with no framing) and over ZeroMQ PUSH/PULL
 * sockets (one record per message).
 */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "base/err.h"
#include "base/fileout.h"
#include "record-frame.h"

enum { KIND_FD, KIND_ZMQ };

struct stream_in {
    int kind;
    char *name;
    int fd;
    msgpack_unpacker up;
    record_frame frame; /* how far the record at up.off has been checked */
    bool eof;
    void *zctx, *zsock;
    int ends, producers;
    long count;
    long announced; /* records the counted end records say their producers sent */
    int empty_ends; /* end records of peers that sent nothing: not counted */
};

struct stream_out {
    int kind;
    char *name;
    fileout *file;    /* KIND_FD: stdout, a file, a FIFO, ... (lib/base/fileout.h) */
    int write_failed; /* a direct write in pack_write_ failed (message set) */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    void *zctx, *zsock;
    long sent; /* records put, announced in the end record */
};

int stream_timeout_ms(void)
{
    const char *e = getenv("AGING_STREAM_TIMEOUT");
    if (!e || !*e)
        return 60000;
    char *end;
    double s = strtod(e, &end);
    if (*end || s < 0)
        return 60000;
    return s == 0 ? -1 : s > INT_MAX / 1000 ? INT_MAX : (int)(s * 1000);
}

size_t stream_max_message(void)
{
    const char *e = getenv("AGING_STREAM_MAX_MB");
    char *end;
    double mb = e && *e ? strtod(e, &end) : 0;
    if (!e || !*e || *end || !(mb >= 1) || mb > 1 << 20)
        return (size_t)STREAM_MAX_MESSAGE_MB << 20;
    return (size_t)(mb * (1 << 20));
}

static bool is_zmq_(const char *ep)
{
    if (*ep == '@' || *ep == '>')
        ep++;
    return strncmp(ep, "tcp://", 6) == 0 || strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "inproc://", 9) == 0;
}

/* Open a ZeroMQ socket of type `type` on ep, binding or connecting. */
static int zmq_open_(const char *ep, int type, void **ctx, void **sock)
{
    bool bind = strncmp(ep, "tcp://*:", 8) == 0;
    if (*ep == '@' || *ep == '>') {
        bind = *ep == '@';
        ep++;
    }
    *ctx = zmq_ctx_new();
    *sock = *ctx ? zmq_socket(*ctx, type) : NULL;
    if (!*sock)
        return err_set("%s: cannot create a ZeroMQ socket: %s", ep, zmq_strerror(errno));
    int t = stream_timeout_ms(), linger = t < 0 ? -1 : t;
    zmq_setsockopt(*sock, type == ZMQ_PULL ? ZMQ_RCVTIMEO : ZMQ_SNDTIMEO, &t, sizeof t);
    zmq_setsockopt(*sock, ZMQ_LINGER, &linger, sizeof linger);
    /* Without IMMEDIATE a connecting PUSH queues messages for a peer that
     * may never exist and "succeeds"; with it, the send timeout applies. */
    int immediate = 1;
    if (type == ZMQ_PUSH)
        zmq_setsockopt(*sock, ZMQ_IMMEDIATE, &immediate, sizeof immediate);
    /* A peer announcing a larger message is disconnected before ZeroMQ
     * allocates it, so no peer can make a reader allocate without bound. */
    int64_t max = (int64_t)stream_max_message();
    if (type == ZMQ_PULL)
        zmq_setsockopt(*sock, ZMQ_MAXMSGSIZE, &max, sizeof max);
    int rc = bind ? zmq_bind(*sock, ep) : zmq_connect(*sock, ep);
    if (rc != 0)
        return err_set("%s: cannot %s: %s", ep, bind ? "bind" : "connect", zmq_strerror(errno));
    return 0;
}

static void zmq_close_(void *ctx, void *sock)
{
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
}

/* ---- input ---------------------------------------------------------------- */

stream_in *stream_in_open(const char *ep)
{
    stream_in *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->name = strdup(ep);
    s->fd = -1;
    s->producers = 1;
    if (is_zmq_(ep)) {
        s->kind = KIND_ZMQ;
        if (zmq_open_(ep, ZMQ_PULL, &s->zctx, &s->zsock) != 0)
            goto fail;
        return s;
    }
    s->kind = KIND_FD;
    if (strcmp(ep, "-") == 0)
        s->fd = 0;
    else if ((s->fd = open(ep, O_RDONLY | O_CLOEXEC)) < 0) {
        err_set("%s:", ep);
        goto fail;
    }
    if (!msgpack_unpacker_init(&s->up, MSGPACK_UNPACKER_INIT_BUFFER_SIZE)) {
        err_set("out of memory");
        goto fail;
    }
    return s;
fail:
    stream_in_free(s);
    return NULL;
}

void stream_in_expect(stream_in *s, int producers)
{
    if (producers > s->producers)
        s->producers = producers;
}

long stream_in_count(const stream_in *s)
{
    return s->count;
}

void stream_in_free(stream_in *s)
{
    if (!s)
        return;
    if (s->kind == KIND_FD) {
        if (s->fd > 0)
            close(s->fd);
        if (s->up.buffer)
            msgpack_unpacker_destroy(&s->up);
    } else {
        zmq_close_(s->zctx, s->zsock);
    }
    free(s->name);
    free(s);
}

/* The next map from the fd: 1 got one (r filled), 0 clean end, -1 error.
 * The unpacker sees a record only once the frame has found all of it, so
 * its buffer holds exactly the bytes of records not yet returned: any left
 * at end of input are a cut record, never a clean end. */
static int next_fd_(stream_in *s, record *r)
{
    for (;;) {
        const uint8_t *at = (const uint8_t *)s->up.buffer + s->up.off;
        size_t have = s->up.used - s->up.off;
        int got = record_frame_scan(&s->frame, at, have);
        if (got < 0)
            return -1;
        if (got == 1) {
            record_frame_init(&s->frame);
            msgpack_unpacked holder;
            msgpack_unpacked_init(&holder);
            msgpack_unpack_return ret = msgpack_unpacker_next(&s->up, &holder);
            if (ret == MSGPACK_UNPACK_SUCCESS)
                return record_take_unpacked(r, &holder, NULL) == 0 ? 1 : -1;
            msgpack_unpacked_destroy(&holder);
            return err_set(ret == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" : "not valid msgpack");
        }
        if (s->eof)
            return have ? err_set("truncated: the input ends inside this record (after %ld whole records)",
                                  s->count)
                        : 0;
        /* Room for big reads once records flow; a small first reservation
         * keeps short streams (a few records, fuzz inputs) cheap. */
        if (!msgpack_unpacker_reserve_buffer(&s->up, s->count ? 1 << 20 : 1 << 16))
            return err_set("out of memory");
        ssize_t n;
        do
            n = read(s->fd, msgpack_unpacker_buffer(&s->up), msgpack_unpacker_buffer_capacity(&s->up));
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return err_set("read error on %s:", s->name);
        if (n == 0)
            s->eof = true;
        msgpack_unpacker_buffer_consumed(&s->up, (size_t)n);
    }
}

static int next_zmq_(stream_in *s, record *r)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    int n = zmq_msg_recv(&m, s->zsock, 0);
    if (n < 0) {
        int e = errno;
        zmq_msg_close(&m);
        if (e == EAGAIN)
            return err_set("%s: nothing received within %d s (is a producer running and pointed here?%s)",
                           s->name, stream_timeout_ms() / 1000,
                           s->empty_ends ? "; end records from peers that sent no records are not counted"
                                         : "");
        return err_set("%s: receive failed: %s", s->name, zmq_strerror(e));
    }
    size_t len = zmq_msg_size(&m);
    void *buf = malloc(len ? len : 1);
    if (!buf) {
        zmq_msg_close(&m);
        return err_set("out of memory");
    }
    memcpy(buf, zmq_msg_data(&m), len);
    zmq_msg_close(&m);
    /* A message is one whole record: checked like a stream's before msgpack
     * allocates anything for it. */
    record_frame_init(&s->frame);
    int got = record_frame_scan(&s->frame, buf, len);
    if (got != 1 || s->frame.pos != len) {
        free(buf);
        return got < 0    ? -1
               : got == 0 ? err_set("truncated record")
                          : err_set("trailing bytes after the record");
    }
    msgpack_unpacked holder;
    msgpack_unpacked_init(&holder);
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(&holder, buf, len, &off);
    if (ret != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&holder);
        free(buf);
        return err_set(ret == MSGPACK_UNPACK_NOMEM_ERROR ? "out of memory" : "not valid msgpack");
    }
    return record_take_unpacked(r, &holder, buf) == 0 ? 1 : -1;
}

/* Count an end record.  Only a producer that sent records ends its part
 * of the stream: an end from a peer that sent none (a stray or foreign
 * one) is not counted, and once the expected ends are in, the records they
 * announce must be the records that came, or the stream is in error. */
static int end_record_(stream_in *s, const record *r)
{
    int64_t p, n;
    if (record_get_int(r, "producers", &p) == 0 && p > s->producers && p <= STREAM_MAX_PRODUCERS)
        s->producers = (int)p;
    if (record_get_int(r, "records", &n) != 0 || n <= 0 || n > LONG_MAX - s->announced) {
        s->empty_ends++;
        return 0;
    }
    s->ends++;
    s->announced += (long)n;
    if (s->kind == KIND_ZMQ && s->ends >= s->producers && s->announced != s->count)
        return err_set("%s: the end records of %d producers announce %ld records, %ld came (a lost message, "
                       "or a peer that is not one of the producers: ZeroMQ tcp endpoints are for trusted "
                       "networks)",
                       s->name, s->ends, s->announced, s->count);
    return 0;
}

int stream_in_next(stream_in *s, record *r)
{
    for (;;) {
        if (s->kind == KIND_ZMQ && s->ends >= s->producers)
            return 0;
        int rc = s->kind == KIND_FD ? next_fd_(s, r) : next_zmq_(s, r);
        if (rc <= 0) {
            record_clear(r);
            return rc < 0 ? err_wrap("record %ld", s->count + 1) : 0;
        }
        const char *kind = record_get_str(r, "kind");
        if (!kind) {
            record_clear(r);
            err_set("record %ld: no string 'kind'", s->count + 1);
            return -1;
        }
        if (strcmp(kind, "end") == 0) {
            if (end_record_(s, r) != 0) {
                record_clear(r);
                return err_wrap("record %ld", s->count + 1);
            }
            continue;
        }
        s->count++;
        return 1;
    }
}

/* ---- output --------------------------------------------------------------- */

/* msgpack write callback: small pieces gather in the buffer; over a file
 * descriptor a large body (tensor data, image bytes) is written straight
 * from the caller's memory after what is buffered, saving a copy. */
static int pack_write_(void *data, const char *buf, size_t len)
{
    stream_out *s = data;
    if (s->kind == KIND_FD && len >= (64u << 10)) {
        if (fileout_write(s->file, s->sb.data, s->sb.size) != 0 || fileout_write(s->file, buf, len) != 0) {
            s->write_failed = 1;
            return -1;
        }
        msgpack_sbuffer_clear(&s->sb);
        return 0;
    }
    return msgpack_sbuffer_write(&s->sb, buf, len);
}

stream_out *stream_out_open(const char *ep)
{
    stream_out *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->name = strdup(ep);
    msgpack_sbuffer_init(&s->sb);
    msgpack_packer_init(&s->pk, s, pack_write_);
    if (is_zmq_(ep)) {
        s->kind = KIND_ZMQ;
        if (zmq_open_(ep, ZMQ_PUSH, &s->zctx, &s->zsock) != 0) {
            stream_out_close(s, false, 0);
            return NULL;
        }
        return s;
    }
    s->kind = KIND_FD;
    if (!(s->file = fileout_open(ep))) {
        stream_out_close(s, false, 0);
        return NULL;
    }
    return s;
}

/* Send what is in the buffer as one message or append it to the fd. */
static int flush_(stream_out *s)
{
    int rc = 0;
    if (s->kind == KIND_FD) {
        rc = fileout_write(s->file, s->sb.data, s->sb.size);
    } else if (s->sb.size > stream_max_message()) {
        rc = err_set("%s: a record of %zu bytes is over the ZeroMQ message limit of %zu MiB "
                     "(AGING_STREAM_MAX_MB raises it, on both sides)",
                     s->name, s->sb.size, stream_max_message() >> 20);
    } else if (zmq_send(s->zsock, s->sb.data, s->sb.size, 0) < 0) {
        rc = errno == EAGAIN
                 ? err_set("%s: no consumer took the data within %d s", s->name, stream_timeout_ms() / 1000)
                 : err_set("%s: send failed: %s", s->name, zmq_strerror(errno));
    }
    msgpack_sbuffer_clear(&s->sb);
    return rc;
}

int stream_out_put(stream_out *s, const record *r)
{
    if (record_pack(r, &s->pk) != 0) {
        msgpack_sbuffer_clear(&s->sb);
        return s->write_failed ? -1 : err_set("cannot pack a record");
    }
    if (flush_(s) != 0)
        return -1;
    s->sent++;
    return 0;
}

int stream_out_close(stream_out *s, bool ok, int producers)
{
    if (!s)
        return 0;
    int rc = 0;
    if (ok && s->kind == KIND_ZMQ) {
        record end;
        record_init(&end);
        record_set_str(&end, "kind", "end");
        record_set_int(&end, "producers", producers > 0 ? producers : 1);
        record_set_int(&end, "records", s->sent);
        rc = stream_out_put(s, &end);
        record_clear(&end);
    }
    if (s->kind == KIND_ZMQ)
        zmq_close_(s->zctx, s->zsock);
    if (fileout_close(s->file, ok && rc == 0) != 0 && rc == 0)
        rc = -1;
    msgpack_sbuffer_destroy(&s->sb);
    free(s->name);
    free(s);
    return rc;
}
