/*
 * faults_preload.c -- LD_PRELOAD'ed into nginx or guichet-office by
 * test_module_faults.py (Stack.nginx_preload, Stack.office_preload):
 * failures they must survive, made deterministic and confined to the code
 * under test.  Settings, read when the process loads it (nginx's workers
 * inherit them; their environment is emptied later):
 *
 *   GUICHET_FAIL_MALLOC_IN=f[,g...]  malloc() returns NULL (ENOMEM) when
 *       one of these exported functions (the module's engine gch_*, a
 *       library's: crypto_pwhash_argon2id_str_verify) is among its
 *       callers; every other allocation of the process succeeds.
 *   GUICHET_FAIL_MALLOC_AT=file:start:size[,...]  likewise for a function
 *       of an object that does not export it (a program): its offset and
 *       size in hex, as `nm -S` prints them, in the object whose file name
 *       ends with "/file".
 *   GUICHET_PREAD_MAX=n   pread() of a request body's temporary file
 *       (a path with "/client_body/") reads at most n bytes at a time: a
 *       short read, which POSIX allows (a signal, a network file system).
 *   GUICHET_PREAD_EOF=n   pread() of such a file from offset n on reads
 *       nothing (end of file): a file shorter than what was written to it.
 *   Every other file (nginx's configuration...) is read as it is.
 *   GUICHET_PWHASH_GATE=path  while the file "path.armed" exists,
 *       crypto_pwhash_str_verify() (libsodium's, a password check on its
 *       thread) makes the file "path.entered", then waits until "path"
 *       exists: what the process does meanwhile (its other requests) is
 *       the test's to choose.
 *   GUICHET_UNLINK_CRASH=path  while the file "path" exists, unlink() of
 *       a file whose path holds "/uploads/" ends the process at once
 *       (_exit(137), as a kill -9 would): a crash after a transaction's
 *       commit, before the files it erased are.
 *
 * Built by the test: cc -shared -fPIC -o faults.so faults_preload.c -ldl
 */

#define _GNU_SOURCE

#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>


#define FAULTS_NAMES_MAX  16
#define FAULTS_FRAMES     24


extern void *__libc_malloc(size_t size);

static char         faults_names_buf[512];
static char         faults_at_buf[512];
static const char  *faults_names[FAULTS_NAMES_MAX];
static int          faults_nnames;
static struct {
    char            file[64];
    unsigned long   start;
    unsigned long   size;
} faults_at[FAULTS_NAMES_MAX];
static int          faults_nat;
static char         faults_gate[256];
static char         faults_unlink_crash[256];
static long         faults_pread_max;
static long         faults_pread_eof = -1;

static __thread int  faults_inside;

static ssize_t (*faults_real_pread)(int fd, void *buf, size_t count,
    off_t offset);


static void faults_init(void) __attribute__((constructor));


static void
faults_init(void)
{
    char        *p, *save;
    const char  *v;

    faults_real_pread = (ssize_t (*)(int, void *, size_t, off_t))
                        dlsym(RTLD_NEXT, "pread");

    v = getenv("GUICHET_PREAD_MAX");
    if (v != NULL) {
        faults_pread_max = atol(v);
    }

    v = getenv("GUICHET_PREAD_EOF");
    if (v != NULL) {
        faults_pread_eof = atol(v);
    }

    v = getenv("GUICHET_PWHASH_GATE");
    if (v != NULL && strlen(v) < sizeof(faults_gate)) {
        strcpy(faults_gate, v);
    }

    v = getenv("GUICHET_UNLINK_CRASH");
    if (v != NULL && strlen(v) < sizeof(faults_unlink_crash)) {
        strcpy(faults_unlink_crash, v);
    }

    v = getenv("GUICHET_FAIL_MALLOC_AT");
    if (v != NULL && strlen(v) < sizeof(faults_at_buf)) {
        strcpy(faults_at_buf, v);

        for (p = strtok_r(faults_at_buf, ",", &save);
             p != NULL && faults_nat < FAULTS_NAMES_MAX;
             p = strtok_r(NULL, ",", &save))
        {
            if (sscanf(p, "%63[^:]:%lx:%lx", faults_at[faults_nat].file,
                       &faults_at[faults_nat].start,
                       &faults_at[faults_nat].size)
                == 3)
            {
                faults_nat++;
            }
        }
    }

    v = getenv("GUICHET_FAIL_MALLOC_IN");
    if (v != NULL && strlen(v) < sizeof(faults_names_buf)) {
        strcpy(faults_names_buf, v);

        for (p = strtok_r(faults_names_buf, ",", &save);
             p != NULL && faults_nnames < FAULTS_NAMES_MAX;
             p = strtok_r(NULL, ",", &save))
        {
            faults_names[faults_nnames++] = p;
        }
    }

    if (faults_nnames == 0 && faults_nat == 0) {
        return;
    }

    /* backtrace() loads libgcc_s (and allocates) on its first call */
    faults_inside = 1;
    {
        void  *frames[2];

        (void) backtrace(frames, 2);
    }
    faults_inside = 0;
}


/* 1 when one of the named functions is among the callers */
static int
faults_called_from_named(void)
{
    int             i, j, n;
    size_t          len, flen;
    unsigned long   off;
    void           *frames[FAULTS_FRAMES];
    Dl_info         info;
    ElfW(Sym)      *sym;

    n = backtrace(frames, FAULTS_FRAMES);

    for (i = 1; i < n; i++) {
        sym = NULL;

        if (dladdr1(frames[i], &info, (void **) &sym, RTLD_DL_SYMENT) == 0) {
            continue;
        }

        for (j = 0; j < faults_nat; j++) {
            off = (unsigned long) ((char *) frames[i]
                                   - (char *) info.dli_fbase);
            len = strlen(faults_at[j].file);
            flen = info.dli_fname ? strlen(info.dli_fname) : 0;

            if (flen > len && info.dli_fname[flen - len - 1] == '/'
                && strcmp(info.dli_fname + flen - len, faults_at[j].file)
                   == 0
                && off > faults_at[j].start
                && off <= faults_at[j].start + faults_at[j].size)
            {
                return 1;
            }
        }

        if (info.dli_sname == NULL || sym == NULL) {
            continue;
        }

        /* the nearest exported symbol may end before the address (a
         * static function after it): the address must be inside it */
        if ((char *) frames[i] > (char *) info.dli_saddr + sym->st_size) {
            continue;
        }

        for (j = 0; j < faults_nnames; j++) {
            if (strcmp(info.dli_sname, faults_names[j]) == 0) {
                return 1;
            }
        }
    }

    return 0;
}


void *
malloc(size_t size)
{
    int  fail;

    if ((faults_nnames == 0 && faults_nat == 0) || faults_inside) {
        return __libc_malloc(size);
    }

    faults_inside = 1;
    fail = faults_called_from_named();
    faults_inside = 0;

    if (fail) {
        errno = ENOMEM;
        return NULL;
    }

    return __libc_malloc(size);
}


/* 1 when fd is a request body's temporary file */
static int
faults_body_file(int fd)
{
    char     link[64], path[4096];
    ssize_t  n;

    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    n = readlink(link, path, sizeof(path) - 1);
    if (n <= 0) {
        return 0;
    }

    path[n] = '\0';

    return strstr(path, "/client_body/") != NULL;
}


ssize_t
pread(int fd, void *buf, size_t count, off_t offset)
{
    if ((faults_pread_eof < 0 && faults_pread_max <= 0)
        || !faults_body_file(fd))
    {
        return faults_real_pread(fd, buf, count, offset);
    }

    if (faults_pread_eof >= 0 && offset >= faults_pread_eof) {
        return 0;
    }

    if (faults_pread_eof >= 0 && (off_t) (offset + count) > faults_pread_eof)
    {
        count = (size_t) (faults_pread_eof - offset);
    }

    if (faults_pread_max > 0 && count > (size_t) faults_pread_max) {
        count = (size_t) faults_pread_max;
    }

    return faults_real_pread(fd, buf, count, offset);
}


ssize_t
pread64(int fd, void *buf, size_t count, off_t offset)
{
    return pread(fd, buf, count, offset);
}


int
crypto_pwhash_str_verify(const char *str, const char *passwd,
    unsigned long long passwdlen)
{
    int     err;
    char    entered[sizeof(faults_gate) + 16];
    FILE   *f;
    int   (*real)(const char *, const char *, unsigned long long);

    err = errno;
    real = (int (*)(const char *, const char *, unsigned long long))
           dlsym(RTLD_NEXT, "crypto_pwhash_str_verify");

    snprintf(entered, sizeof(entered), "%s.armed", faults_gate);

    if (faults_gate[0] != '\0' && access(entered, F_OK) == 0) {
        snprintf(entered, sizeof(entered), "%s.entered", faults_gate);
        f = fopen(entered, "w");
        if (f != NULL) {
            fclose(f);
        }

        while (access(faults_gate, F_OK) != 0) {
            usleep(10000);
        }
    }

    errno = err;
    return real(str, passwd, passwdlen);
}


int
unlink(const char *path)
{
    int  (*real)(const char *);

    if (faults_unlink_crash[0] != '\0' && strstr(path, "/uploads/") != NULL
        && access(faults_unlink_crash, F_OK) == 0)
    {
        _exit(137);
    }

    real = (int (*)(const char *)) dlsym(RTLD_NEXT, "unlink");
    return real(path);
}
