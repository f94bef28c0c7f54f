/*
 * err: the one error vocabulary of aging-cyclegan.
 *
 * Tools call err_init(argv[0]) first; die() and warn() then print
 * "progname: message" on stderr, with ": strerror(errno)" appended when the
 * format ends in ':'.  Library code never exits: it returns -1 (or NULL)
 * and leaves a message with err_set(), which the tool reads with err_msg()
 * and turns into an exit status (1 runtime error, 2 usage).
 */
#pragma once

/* Remember the program name (basename of argv0) for every message. */
void err_init(const char *argv0);
const char *err_progname(void);

/* Print "progname: message" and exit(1). */
void die(const char *fmt, ...) __attribute__((__noreturn__, __format__(printf, 1, 2)));
/* Print "progname: message" and continue. */
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Set the last library error (thread-local); same ':' rule as die(). Always
 * returns -1 so library code can write `return err_set(...)`. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message with more context: "ctx: old message". */
int err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last message set on this thread ("" if none). */
const char *err_msg(void);

/* Flush and close stdout; on failure (full disk, closed pipe) die. */
void err_close_stdout(void);
