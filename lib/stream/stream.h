/*
 * stream: reading and writing record streams over an endpoint.
 *
 * Endpoints (docs/stream.md):
 *   -                   stdin / stdout
 *   PATH                a file: a regular one is written to a temporary name and
 *                       renamed on close, a FIFO, a device or /dev/fd/N is written
 *                       in place (lib/base/fileout.h)
 *   tcp://<star>:PORT   ZeroMQ, bind (<star> is '*')   tcp://HOST:PORT   ZeroMQ, connect
 *   ipc:///PATH         ZeroMQ, connect      @ENDPOINT / >ENDPOINT  force bind / connect
 * Inputs are PULL sockets and outputs PUSH sockets, so several producers can
 * feed one consumer.  Over a pipe or file the stream ends at end of file;
 * over ZeroMQ every producer sends an `end` record on close, naming the
 * records it sent, and the reader stops once it has seen one from each
 * producer (the count is the larger of stream_in_expect's and the
 * `producers` field of the end records).  An end record that announces no
 * records is not counted, and the records the end records announce must be
 * the records that came: a stray or foreign `end` cannot cut a stream short
 * in silence.  Messages over stream_max_message() bytes are refused (the
 * sender gets an error; a reader drops a peer announcing one).  ZeroMQ has
 * no authentication here: tcp endpoints are for trusted networks (bind on
 * 127.0.0.1 or use ipc:// on one machine).
 *
 * A ZeroMQ peer that does not show up within the timeout (default 60 s,
 * AGING_STREAM_TIMEOUT seconds in the environment, 0 = wait for ever) is an
 * error, so an unreachable endpoint never hangs a pipeline.
 */
#pragma once

#include <stddef.h>

#include "record.h"

typedef struct stream_in stream_in;
typedef struct stream_out stream_out;

/* Open an input endpoint; NULL with err_msg() set on failure.  Free with
 * stream_in_free. */
stream_in *stream_in_open(const char *endpoint);
/* Expect end records from n producers before the stream ends (ZeroMQ). */
void stream_in_expect(stream_in *s, int producers);
/* Read the next record into r (cleared first).  1: a record, 0: end of the
 * stream, -1: error, message "record N: what is wrong". `end` records are
 * consumed here, never returned. */
int stream_in_next(stream_in *s, record *r);
/* Records returned so far. */
long stream_in_count(const stream_in *s);
void stream_in_free(stream_in *s);

stream_out *stream_out_open(const char *endpoint);
/* Write one record; -1 with a message on failure (closed pipe, no consumer). */
int stream_out_put(stream_out *s, const record *r);
/* Flush and close.  ok=true: finish (ZeroMQ: send the end record naming
 * `producers`; file: rename into place); ok=false: abandon (a regular file
 * output is removed, never left half-written).  Frees s; -1 if finishing failed. */
int stream_out_close(stream_out *s, bool ok, int producers);

/* The timeout in milliseconds the environment asks for (-1 = none). */
int stream_timeout_ms(void);

/* The largest ZeroMQ message (one record): STREAM_MAX_MESSAGE_MB MiB, or
 * AGING_STREAM_MAX_MB from the environment.  The default holds an f32
 * tensor record of 2048x2048 pixels (48 MiB) and photos far larger than faces. */
enum { STREAM_MAX_MESSAGE_MB = 64, STREAM_MAX_PRODUCERS = 1024 };
size_t stream_max_message(void);
