/*
 * httpguard: a total deadline for reading each HTTP request, and room kept
 * free for quick requests while slow clients hold connections (slowloris).
 *
 * An idle timeout that restarts on every byte does not stop a client that
 * trickles one byte a second, and limits per address do not stop many
 * addresses.  So the guard watches every open connection from its own
 * thread: one still reading its request (headers or body) past the
 * deadline is shut down, and while more than 3/4 of the slots are taken,
 * the requests that have been reading longest (headers before bodies) are
 * shut down until half are free, sparing any under a second old.  A
 * request that is complete (being answered, or queued for a worker) is
 * never touched.
 *
 *   httpguard *g = httpguard_open(512, 30);      // slots, deadline (s)
 *   // MHD's notify-connection callback, STARTED:
 *   void *slot = httpguard_add(g, fd);           // NULL: not watched
 *   httpguard_state(g, slot, HTTPGUARD_BODY);    // headers read
 *   httpguard_state(g, slot, HTTPGUARD_DONE);    // whole request read
 *   httpguard_state(g, slot, HTTPGUARD_HEADERS); // keep-alive: the next one
 *   httpguard_remove(g, slot);                   // CLOSED
 *   httpguard_free(g);
 *
 * The guard holds a dup() of each socket, so shutting one down can never
 * hit a descriptor number the server has closed and reused meanwhile; a
 * shut-down socket makes the server's next read fail, and it closes the
 * connection itself.  All functions are thread-safe.
 */
#pragma once

enum httpguard_state { HTTPGUARD_HEADERS, HTTPGUARD_BODY, HTTPGUARD_DONE };

typedef struct httpguard httpguard;

/* Watch up to max_conns connections; deadline_s (> 0) for each request.
 * NULL with err_msg() when out of memory or the thread cannot start. */
httpguard *httpguard_open(unsigned max_conns, double deadline_s);
void httpguard_free(httpguard *g); /* NULL-safe; stops the thread */

/* A new connection's socket: its slot, or NULL when it cannot be watched
 * (every slot taken, or no descriptor left for the dup). */
void *httpguard_add(httpguard *g, int fd);
void httpguard_remove(httpguard *g, void *slot);           /* NULL-safe */
void httpguard_state(httpguard *g, void *slot, int state); /* NULL-safe; a new HEADERS restarts the clock */

/* Connections shut down so far: past the deadline, and to make room. */
void httpguard_counts(httpguard *g, unsigned long *late, unsigned long *evicted);
