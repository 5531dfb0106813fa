/*
 * hash.c -- guichet-office's password hashing threads.
 *
 * argon2id (libsodium's crypto_pwhash, interactive limits: ~66 ms and
 * 64 MiB) is far slower than anything else the office does.  Run on the
 * server's thread, a burst of hashes stalls every other request behind
 * it.  So a handler that must hash or verify a password does it in two
 * halves, with libmicrohttpd's suspend/resume:
 *
 *   1. on the server's thread, the handler checks what is cheap (body,
 *      reset token, lock), fills rq->hash (gcho_hash_prepare) and
 *      returns; http.c suspends the connection and queues the job here;
 *   2. one of office_hash_threads threads hashes/verifies, then resumes
 *      the connection;
 *   3. on the server's thread again, the handler is called a second time
 *      (rq->hash->done) and does its SQL with the result.
 *
 * The threads touch nothing but their job: PostgreSQL and Redis stay on
 * the server's thread alone, with no lock.  At most office_hash_threads
 * hashes run at once (each takes 64 MiB), and at most GCHO_HASH_QUEUE
 * wait; more is answered 503 `unavailable` at once.
 *
 * Counters of hashes made and verified are logged on SIGUSR1 (main.c).
 */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>
#include <sodium.h>

#include "office.h"


#define GCHO_HASH_QUEUE    256
#define GCHO_HASH_THREADS  64


static pthread_mutex_t   gcho_hash_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t    gcho_hash_cv = PTHREAD_COND_INITIALIZER;
static gcho_hash_t      *gcho_hash_head;
static gcho_hash_t      *gcho_hash_tail;
static size_t            gcho_hash_queued;
static int               gcho_hash_stopping;
static pthread_t         gcho_hash_tid[GCHO_HASH_THREADS];
static int               gcho_hash_nthreads;
static unsigned long     gcho_hash_made;
static unsigned long     gcho_hash_verified;

/* a hash of 32 random bytes nobody knows: unknown logins are verified
 * against it, so that they cost what known ones cost */
static char              gcho_hash_dummy_str[crypto_pwhash_STRBYTES];


static void *
gcho_hash_thread(void *arg)
{
    int           ok;
    char          made[crypto_pwhash_STRBYTES];
    gcho_hash_t  *h;

    (void) arg;

    for ( ;; ) {
        pthread_mutex_lock(&gcho_hash_mu);

        while (gcho_hash_head == NULL && !gcho_hash_stopping) {
            pthread_cond_wait(&gcho_hash_cv, &gcho_hash_mu);
        }

        h = gcho_hash_head;
        if (h == NULL) {
            pthread_mutex_unlock(&gcho_hash_mu);
            return NULL;
        }

        gcho_hash_head = h->next;
        if (gcho_hash_head == NULL) {
            gcho_hash_tail = NULL;
        }
        gcho_hash_queued--;

        pthread_mutex_unlock(&gcho_hash_mu);

        /* the job is ours until it is resumed: no lock needed */

        ok = 1;

        if (h->verify_hash[0]) {
            errno = 0;
            h->verified = crypto_pwhash_str_verify(h->verify_hash,
                                                   h->verify_pw,
                                                   strlen(h->verify_pw))
                          == 0;
            ok = h->verified;

            /* -1 is a wrong password (EINVAL) or argon2id's memory
             * refused (ENOMEM): the server's failure, answered 503 by
             * the handler, never "wrong password" */
            if (!h->verified && errno == ENOMEM) {
                gchb_log("error", "office: a password check had no memory");
                h->failed = 1;
            }
        }

        if (ok && h->make_pw[0]) {
            if (crypto_pwhash_str(made, h->make_pw, strlen(h->make_pw),
                                  crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                  crypto_pwhash_MEMLIMIT_INTERACTIVE)
                != 0)
            {
                h->failed = 1;
            } else {
                memcpy(h->made, made, sizeof(made));
            }
            sodium_memzero(made, sizeof(made));
        }

        pthread_mutex_lock(&gcho_hash_mu);
        if (h->verify_hash[0]) {
            gcho_hash_verified++;
        }
        if (ok && h->make_pw[0] && !h->failed) {
            gcho_hash_made++;
        }
        h->done = 1;
        pthread_mutex_unlock(&gcho_hash_mu);

        MHD_resume_connection(h->conn);
    }
}


int
gcho_hash_start(int threads)
{
    int      i;
    uint8_t  rnd[32];

    randombytes_buf(rnd, sizeof(rnd));
    if (crypto_pwhash_str(gcho_hash_dummy_str, (const char *) rnd,
                          sizeof(rnd), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE)
        != 0)
    {
        gchb_log("error", "office: cannot make the dummy password hash");
        return -1;
    }
    sodium_memzero(rnd, sizeof(rnd));

    if (threads > GCHO_HASH_THREADS) {
        threads = GCHO_HASH_THREADS;
    }

    for (i = 0; i < threads; i++) {
        if (pthread_create(&gcho_hash_tid[i], NULL, gcho_hash_thread, NULL)
            != 0)
        {
            gchb_log("error", "office: cannot start a hashing thread");
            gcho_hash_stop();
            return -1;
        }
        gcho_hash_nthreads++;
    }

    return 0;
}


void
gcho_hash_stop(void)
{
    int           i;
    gcho_hash_t  *h, *next;

    pthread_mutex_lock(&gcho_hash_mu);

    gcho_hash_stopping = 1;

    /* jobs not begun: answered 503 by their handler */
    h = gcho_hash_head;
    for (next = h; next != NULL; next = next->next) {
        next->failed = 1;
        next->done = 1;
    }
    gcho_hash_head = NULL;
    gcho_hash_tail = NULL;
    gcho_hash_queued = 0;

    pthread_cond_broadcast(&gcho_hash_cv);
    pthread_mutex_unlock(&gcho_hash_mu);

    while (h != NULL) {
        next = h->next;
        MHD_resume_connection(h->conn);
        h = next;
    }

    for (i = 0; i < gcho_hash_nthreads; i++) {
        pthread_join(gcho_hash_tid[i], NULL);
    }
    gcho_hash_nthreads = 0;
}


const char *
gcho_hash_dummy(void)
{
    return gcho_hash_dummy_str;
}


gcho_hash_t *
gcho_hash_prepare(gcho_req_t *rq)
{
    size_t  queued;

    pthread_mutex_lock(&gcho_hash_mu);
    queued = gcho_hash_queued;
    pthread_mutex_unlock(&gcho_hash_mu);

    /* only this thread queues: the room seen here stays until the job is
     * queued after the suspension (gcho_hash_queue) */
    if (queued >= GCHO_HASH_QUEUE || gcho_hash_nthreads == 0) {
        gcho_error(rq, 503, "unavailable",
                   "Le service est très sollicité, réessayez dans un "
                   "instant.");
        return NULL;
    }

    rq->hash = calloc(1, sizeof(gcho_hash_t));
    if (rq->hash == NULL) {
        gcho_error(rq, 500, "internal", "Une erreur interne est survenue.");
        return NULL;
    }

    return rq->hash;
}


void
gcho_hash_queue(gcho_req_t *rq)
{
    gcho_hash_t  *h = rq->hash;

    h->conn = rq->conn;
    h->next = NULL;

    pthread_mutex_lock(&gcho_hash_mu);

    if (gcho_hash_stopping) {
        h->failed = 1;
        h->done = 1;
        pthread_mutex_unlock(&gcho_hash_mu);
        MHD_resume_connection(h->conn);
        return;
    }

    if (gcho_hash_tail != NULL) {
        gcho_hash_tail->next = h;
    } else {
        gcho_hash_head = h;
    }
    gcho_hash_tail = h;
    gcho_hash_queued++;

    pthread_cond_signal(&gcho_hash_cv);
    pthread_mutex_unlock(&gcho_hash_mu);
}


int
gcho_hash_done(gcho_req_t *rq)
{
    int  done;

    if (rq->hash == NULL) {
        return 0;
    }

    pthread_mutex_lock(&gcho_hash_mu);
    done = rq->hash->done;
    pthread_mutex_unlock(&gcho_hash_mu);

    return done;
}


void
gcho_hash_free(gcho_hash_t *h)
{
    if (h != NULL) {
        sodium_memzero(h, sizeof(gcho_hash_t));
        free(h);
    }
}


void
gcho_hash_log_counters(void)
{
    unsigned long  made, verified;
    size_t         queued;

    pthread_mutex_lock(&gcho_hash_mu);
    made = gcho_hash_made;
    verified = gcho_hash_verified;
    queued = gcho_hash_queued;
    pthread_mutex_unlock(&gcho_hash_mu);

    gchb_log("info", "office: password hashes: %lu made, %lu verified, "
             "%zu waiting, %d threads", made, verified, queued,
             gcho_hash_nthreads);
}
