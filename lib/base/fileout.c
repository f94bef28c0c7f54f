/*
 * fileout: a regular file is replaced atomically through a temporary file,
 * everything else is written in place; temporary files are cleaned up on
 * every path out, and after a SIGKILL by the next writer (lib/base/fileout.h).
 */
#include "fileout.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

struct fileout {
    char *name;   /* as the caller gave it, for messages ("stdout" for "-") */
    char *target; /* the file the temporary one replaces; NULL in place */
    char *tmp;    /* the temporary file; NULL when written in place */
    int fd;
    pid_t owner;        /* the process that created tmp */
    fileout *next_live; /* in live_ while tmp exists */
};

enum { MAX_LINKS = 40, SUFFIX_LEN = 6 };
static const char tmp_tag_[] = ".tmp.";

/* The temporary files that exist now, removed by exit() (die) if their
 * writer never got to close them. */
static pthread_mutex_t live_lock_ = PTHREAD_MUTEX_INITIALIZER;
static fileout *live_;
static bool at_exit_registered_;

static void remove_live_at_exit_(void)
{
    /* Another thread may hold the lock while exit() runs: go on without it
     * rather than hang; the list is only ever prepended to. */
    bool locked = pthread_mutex_trylock(&live_lock_) == 0;
    for (fileout *f = live_; f; f = f->next_live)
        if (f->owner == getpid()) /* not a forked child's to remove */
            unlink(f->tmp);
    live_ = NULL;
    if (locked)
        pthread_mutex_unlock(&live_lock_);
}

static void live_add_(fileout *f)
{
    pthread_mutex_lock(&live_lock_);
    if (!at_exit_registered_)
        at_exit_registered_ = atexit(remove_live_at_exit_) == 0;
    f->next_live = live_;
    live_ = f;
    pthread_mutex_unlock(&live_lock_);
}

static void live_remove_(fileout *f)
{
    pthread_mutex_lock(&live_lock_);
    for (fileout **p = &live_; *p; p = &(*p)->next_live) {
        if (*p == f) {
            *p = f->next_live;
            break;
        }
    }
    pthread_mutex_unlock(&live_lock_);
}

/* The descriptor a name stands for ("-", /dev/stdout, /dev/fd/N, ...), or
 * -1.  Reopening these by name would start a new file offset (and under
 * `>>` drop the append flag), so they are used as they are. */
static int named_fd_(const char *p)
{
    if (strcmp(p, "-") == 0 || strcmp(p, "/dev/stdout") == 0)
        return 1;
    if (strcmp(p, "/dev/stderr") == 0)
        return 2;
    const char *n = strncmp(p, "/dev/fd/", 8) == 0          ? p + 8
                    : strncmp(p, "/proc/self/fd/", 14) == 0 ? p + 14
                                                            : NULL;
    if (!n || !isdigit((unsigned char)*n))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(n, &end, 10);
    return *end || errno || v > INT_MAX ? -1 : (int)v;
}

/* Where the symbolic link p points: its target, taken relative to p's
 * folder.  NULL with errno set. */
static char *follow_(const char *p)
{
    char buf[PATH_MAX];
    ssize_t n = readlink(p, buf, sizeof buf - 1);
    if (n < 0)
        return NULL;
    buf[n] = 0;
    const char *slash = strrchr(p, '/');
    if (buf[0] == '/' || !slash)
        return strdup(buf);
    size_t dir = (size_t)(slash - p) + 1;
    char *q = malloc(dir + (size_t)n + 1);
    if (q) {
        memcpy(q, p, dir);
        memcpy(q + dir, buf, (size_t)n + 1);
    }
    return q;
}

enum how_ { HOW_FD, HOW_REPLACE, HOW_IN_PLACE };
struct where_ {
    enum how_ how;
    int fd;       /* HOW_FD */
    char *path;   /* the name at the end of the links (malloc'd) */
    bool existed; /* HOW_REPLACE over an existing file of this mode */
    mode_t mode;
};

/* Decide how path is written: follow the links of its last component to
 * a named descriptor, a regular file (or none yet), or something else. */
static int where_(const char *path, struct where_ *w)
{
    memset(w, 0, sizeof *w);
    char *p = strdup(path);
    if (!p)
        return err_set("out of memory");
    for (int hops = 0;; hops++) {
        struct stat st;
        if ((w->fd = named_fd_(p)) >= 0) {
            w->how = HOW_FD;
            break;
        }
        if (strncmp(p, "/proc/", 6) == 0) { /* magic links: only the kernel follows them */
            w->how = HOW_IN_PLACE;
            break;
        }
        if (lstat(p, &st) != 0) {
            if (errno != ENOENT)
                goto fail;
            w->how = HOW_REPLACE;
            break;
        }
        if (S_ISLNK(st.st_mode)) {
            char *q = hops < MAX_LINKS ? follow_(p) : NULL;
            if (hops >= MAX_LINKS)
                errno = ELOOP;
            if (!q)
                goto fail;
            free(p);
            p = q;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            errno = EISDIR;
            goto fail;
        }
        w->how = S_ISREG(st.st_mode) ? HOW_REPLACE : HOW_IN_PLACE;
        w->existed = S_ISREG(st.st_mode);
        w->mode = st.st_mode & 07777;
        break;
    }
    w->path = p;
    return 0;
fail:
    free(p);
    return err_set("%s:", path);
}

static void random_suffix_(char out[SUFFIX_LEN + 1])
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[SUFFIX_LEN];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        /* no entropy yet (early boot): the clock, made unique per call */
        static unsigned long calls;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long x = (unsigned long)ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20) ^
                          __atomic_add_fetch(&calls, 1, __ATOMIC_RELAXED) * 2654435761ul;
        for (int i = 0; i < SUFFIX_LEN; i++, x /= 62)
            r[i] = (unsigned char)(x % 62);
    }
    for (int i = 0; i < SUFFIX_LEN; i++)
        out[i] = abc[r[i] % 62];
    out[SUFFIX_LEN] = 0;
}

/* Whether name is base + ".tmp." + PID + "." + 6 letters or digits (our
 * own pattern, nothing looser); the PID in *pid. */
static bool tmp_name_of_(const char *name, const char *base, size_t base_len, pid_t *pid)
{
    size_t tl = sizeof tmp_tag_ - 1;
    if (strncmp(name, base, base_len) != 0 || strncmp(name + base_len, tmp_tag_, tl) != 0)
        return false;
    const char *p = name + base_len + tl;
    if (!isdigit((unsigned char)*p))
        return false;
    char *end;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || v <= 0 || v > INT_MAX || *end != '.')
        return false;
    for (int i = 1; i <= SUFFIX_LEN; i++)
        if (!isalnum((unsigned char)end[i]))
            return false;
    if (end[SUFFIX_LEN + 1])
        return false;
    *pid = (pid_t)v;
    return true;
}

static bool alive_(pid_t pid)
{
    return pid == getpid() || kill(pid, 0) == 0 || errno == EPERM;
}

/* Remove the temporary files of target left by writers that are gone. */
static void clean_stale_(const char *target)
{
    const char *slash = strrchr(target, '/');
    char *dir = slash ? strndup(target, slash == target ? 1 : (size_t)(slash - target)) : strdup(".");
    const char *base = slash ? slash + 1 : target;
    DIR *d = dir ? opendir(dir) : NULL;
    free(dir);
    if (!d)
        return;
    size_t base_len = strlen(base);
    struct dirent *e;
    while ((e = readdir(d))) {
        pid_t pid;
        if (!tmp_name_of_(e->d_name, base, base_len, &pid) || alive_(pid))
            continue;
        /* The PID may name a process of another machine or container
         * sharing the folder: its lock, which flock(2) keeps across NFS,
         * says whether a writer still holds the file. */
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
            (void)unlinkat(dirfd(d), e->d_name, 0);
        close(fd);
    }
    closedir(d);
}

void fileout_clean_stale(const char *path)
{
    struct where_ w;
    if (where_(path, &w) != 0)
        return;
    if (w.how == HOW_REPLACE)
        clean_stale_(w.path);
    free(w.path);
}

static int create_tmp_(fileout *f, const struct where_ *w)
{
    size_t n = strlen(f->target) + sizeof tmp_tag_ + 3 * sizeof(long) + SUFFIX_LEN + 2;
    if (!(f->tmp = malloc(n)))
        return err_set("out of memory");
    for (int tries = 0; tries < 64; tries++) {
        char suffix[SUFFIX_LEN + 1];
        random_suffix_(suffix);
        snprintf(f->tmp, n, "%s%s%ld.%s", f->target, tmp_tag_, (long)getpid(), suffix);
        /* 0666: open() applies the umask, as for any file a tool creates */
        f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd >= 0 || errno != EEXIST)
            break;
    }
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        errno = e;
        return err_set("%s: cannot create a temporary file beside it:", f->name);
    }
    f->owner = getpid();
    live_add_(f);
    if (w->existed)
        (void)fchmod(f->fd, w->mode); /* the replaced file's mode: someone chose it */
    /* Held until the rename; where locks are not supported the PID in the
     * name still guards the file on this machine. */
    (void)flock(f->fd, LOCK_EX | LOCK_NB);
    return 0;
}

fileout *fileout_open(const char *path)
{
    struct where_ w;
    if (where_(path, &w) != 0)
        return NULL;
    fileout *f = calloc(1, sizeof *f);
    if (!f || !(f->name = strdup(strcmp(path, "-") == 0 ? "stdout" : path))) {
        free(f);
        free(w.path);
        err_set("out of memory");
        return NULL;
    }
    f->fd = -1;
    int rc = 0;
    if (w.how == HOW_FD) {
        if ((f->fd = fcntl(w.fd, F_DUPFD_CLOEXEC, 3)) < 0)
            rc = err_set("%s:", f->name);
    } else if (w.how == HOW_IN_PLACE) {
        /* a FIFO or a device: no O_TRUNC, no O_CREAT, nothing replaced */
        if ((f->fd = open(w.path, O_WRONLY | O_NOCTTY | O_CLOEXEC)) < 0)
            rc = err_set("%s:", f->name);
    } else {
        f->target = w.path;
        w.path = NULL;
        clean_stale_(f->target);
        rc = create_tmp_(f, &w);
    }
    free(w.path);
    if (rc != 0) {
        fileout_close(f, false);
        return NULL;
    }
    return f;
}

int fileout_write(fileout *f, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(f->fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return err_set("writing %s failed:", f->name);
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Best effort: make the rename durable.  Errors are ignored (some file
 * systems refuse fsync on folders). */
static void fsync_dir_(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir)
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int fileout_close(fileout *f, bool ok)
{
    if (!f)
        return 0;
    int rc = 0;
    if (f->tmp) {
        /* rename while the lock is held; closing releases it */
        if (ok && fsync(f->fd) != 0)
            rc = err_set("%s:", f->name);
        if (ok && rc == 0 && rename(f->tmp, f->target) != 0)
            rc = err_set("%s: cannot rename the temporary file over it:", f->name);
        if (ok && rc == 0)
            fsync_dir_(f->target);
        else
            unlink(f->tmp);
        live_remove_(f);
    }
    if (f->fd >= 0 && close(f->fd) != 0 && ok && rc == 0)
        rc = err_set("%s:", f->name);
    free(f->tmp);
    free(f->target);
    free(f->name);
    free(f);
    return rc;
}

bool fileout_replaces(const fileout *f)
{
    return f && f->tmp;
}
