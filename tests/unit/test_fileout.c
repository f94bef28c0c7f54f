/*
 * test_fileout: lib/fileout's choices one by one: a regular file replaced
 * (its mode kept, a new one following the umask), a link followed, a FIFO
 * written in place, a failed write leaving nothing, stale temporary files
 * of our own pattern removed and no others.  tests/outputs.bats runs the
 * same through the tools.
 */
#include "base/err.h"
#include "base/fileout.h"

#include "check.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[64];

static const char *tpath(const char *name)
{
    static char bufs[4][352];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%.200s", dir, name);
    return b;
}

static int setup(void)
{
    if (dir[0])
        return 0;
    snprintf(dir, sizeof dir, "/tmp/test_fileout.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int count_temps(void)
{
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    if (d)
        closedir(d);
    return n;
}

static int write_text(const char *path, const char *text)
{
    fileout *f = fileout_open(path);
    if (!f)
        return -1;
    int rc = fileout_write(f, text, strlen(text));
    return fileout_close(f, rc == 0) || rc ? -1 : 0;
}

static int same_text(const char *path, const char *want)
{
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0)
        close(fd);
    return n == (ssize_t)strlen(want) && memcmp(buf, want, (size_t)n) == 0;
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_mode & 07777 : 0;
}

static int test_regular_files_and_modes(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    mode_t old = umask(027);
    int rc = write_text(tpath("a"), "one");
    umask(old);
    EXPECT(rc == 0 && same_text(tpath("a"), "one"), "%s", err_msg());
    EXPECT(mode_of(tpath("a")) == 0640, "new file mode %o, want 640 under umask 027", mode_of(tpath("a")));
    EXPECT(chmod(tpath("a"), 0604) == 0, "chmod");
    EXPECT(write_text(tpath("a"), "two") == 0 && same_text(tpath("a"), "two"), "%s", err_msg());
    EXPECT(mode_of(tpath("a")) == 0604, "replaced file mode %o, want 604 kept", mode_of(tpath("a")));
    /* abandoned: the old content stays, nothing else */
    fileout *f = fileout_open(tpath("a"));
    EXPECT(f && fileout_replaces(f) && fileout_write(f, "xx", 2) == 0, "%s", err_msg());
    EXPECT(count_temps() == 1, "the temporary file exists while writing");
    EXPECT(fileout_close(f, false) == 0, "abandon");
    EXPECT(same_text(tpath("a"), "two") && count_temps() == 0, "abandoned write left something");
    /* a folder is refused */
    EXPECT(!fileout_open(dir) && strstr(err_msg(), "Is a directory"), "%s", err_msg());
    return 0;
}

static int test_links(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    EXPECT(write_text(tpath("real"), "old") == 0, "%s", err_msg());
    EXPECT(symlink("real", tpath("link")) == 0 && symlink("link", tpath("link2")) == 0, "symlink");
    EXPECT(symlink("new", tpath("dangling")) == 0, "symlink");
    EXPECT(write_text(tpath("link2"), "via links") == 0, "%s", err_msg());
    EXPECT(write_text(tpath("dangling"), "created") == 0, "%s", err_msg());
    struct stat st;
    EXPECT(lstat(tpath("link2"), &st) == 0 && S_ISLNK(st.st_mode), "link2 replaced");
    EXPECT(lstat(tpath("link"), &st) == 0 && S_ISLNK(st.st_mode), "link replaced");
    EXPECT(lstat(tpath("dangling"), &st) == 0 && S_ISLNK(st.st_mode), "dangling link replaced");
    EXPECT(same_text(tpath("real"), "via links") && same_text(tpath("new"), "created"), "targets");
    EXPECT(symlink("loop", tpath("loop")) == 0, "symlink");
    EXPECT(!fileout_open(tpath("loop")) && strstr(err_msg(), "Too many levels"), "%s", err_msg());
    return 0;
}

static int test_fifo_in_place(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    EXPECT(mkfifo(tpath("fifo"), 0600) == 0, "mkfifo");
    int rd = open(tpath("fifo"), O_RDONLY | O_NONBLOCK);
    EXPECT(rd >= 0, "reader");
    fileout *f = fileout_open(tpath("fifo"));
    EXPECT(f && !fileout_replaces(f), "%s", err_msg());
    EXPECT(fileout_write(f, "piped", 5) == 0 && fileout_close(f, true) == 0, "%s", err_msg());
    char buf[16] = {0};
    EXPECT(read(rd, buf, sizeof buf) == 5 && memcmp(buf, "piped", 5) == 0, "read back '%s'", buf);
    close(rd);
    struct stat st;
    EXPECT(lstat(tpath("fifo"), &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO was replaced");
    /* a descriptor by name: the same open file, at its offset */
    int fd = open(tpath("out"), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    EXPECT(fd >= 0 && write(fd, "head ", 5) == 5, "open");
    char name[32];
    snprintf(name, sizeof name, "/dev/fd/%d", fd);
    EXPECT(write_text(name, "body") == 0, "%s", err_msg());
    close(fd);
    EXPECT(same_text(tpath("out"), "head body"), "/dev/fd/N not written at its offset");
    return 0;
}

/* Whether another open file holds path's flock lock. */
static int locked_elsewhere(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    int busy = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) != 0;
    if (fd >= 0)
        close(fd);
    return busy;
}

static int test_stale_temporary_files(void)
{
    EXPECT(setup() == 0, "mkdtemp");
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    EXPECT(child > 0 && waitpid(child, NULL, 0) == child, "fork");
    char stale[64], other[5][64];
    snprintf(stale, sizeof stale, "s.tmp.%d.AbC123", (int)child);
    snprintf(other[0], sizeof other[0], "s.tmp.%d.AbC1234", (int)child);    /* not our pattern */
    snprintf(other[1], sizeof other[1], "s.tmp.AbC123");                    /* no PID */
    snprintf(other[2], sizeof other[2], "t.tmp.%d.AbC123", (int)child);     /* another file's */
    snprintf(other[3], sizeof other[3], "s.tmp.%d.AbC123", (int)getppid()); /* a live writer's */
    snprintf(other[4], sizeof other[4], "s.tmp.%d.Locked", (int)child);     /* held by a lock */
    EXPECT(write_text(tpath(stale), "x") == 0, "%s", err_msg());
    for (int i = 0; i < 5; i++)
        EXPECT(write_text(tpath(other[i]), "x") == 0, "%s", err_msg());
    int lk = open(tpath(other[4]), O_RDONLY);
    EXPECT(lk >= 0, "open");
    /* flock locks belong to the open file: a child's lock stands for another machine's */
    pid_t holder = fork();
    if (holder == 0) {
        flock(lk, LOCK_EX);
        pause();
        _exit(0);
    }
    for (int i = 0; i < 500 && !locked_elsewhere(tpath(other[4])); i++)
        usleep(10000);
    fileout_clean_stale(tpath("s"));
    kill(holder, SIGKILL);
    waitpid(holder, NULL, 0);
    close(lk);
    EXPECT(access(tpath(stale), F_OK) != 0, "the stale file %s was kept", stale);
    for (int i = 0; i < 5; i++)
        EXPECT(access(tpath(other[i]), F_OK) == 0, "%s was removed", other[i]);
    return 0;
}

static int test_zz_cleanup(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            unlink(tpath(e->d_name));
    if (d)
        closedir(d);
    rmdir(dir);
    return 0;
}

CHECK_MAIN(T(test_regular_files_and_modes), T(test_links), T(test_fifo_in_place),
           T(test_stale_temporary_files), T(test_zz_cleanup))
