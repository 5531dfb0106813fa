/*
 * gchc.h -- guichetctl's commands that live in ctl/ (the operators' tool).
 *
 * ctl.c parses the command line and runs one command; the longer ones
 * have a file each: load-town (load.c), sepa-export (sepa.c), check and
 * recount (check.c).  guichetctl may call the back-end library
 * (backend/gchb.h) and the worker's tasks (worker/gchw.h: publication,
 * the persister's lag); neither calls back here.
 */

#ifndef GCHC_H
#define GCHC_H

#include "gchw.h"


/* ------------------------------------------------------------------ */
/* load-town (load.c)                                                   */

/*
 * Parses the town file with the engine and upserts it in one transaction.
 * 0, 1 when it changed nothing, or -1 after printing the engine's message
 * (nothing written).  Unless replace is set, a file of another town (its
 * name differs from the loaded town's) or one that drops families that
 * have bookings is refused (-1, the reason printed, nothing written).
 */
int gchc_load_town(PGconn *pg, const char *path, int replace);


/* ------------------------------------------------------------------ */
/* SEPA direct-debit export (sepa.c)                                    */

/*
 * guichetctl sepa-export: writes the pain.008 file of month ("YYYY-MM")
 * to out (NULL: stdout): the month's unpaid invoices of families with an
 * active mandate, in ONE transaction that records the export
 * (sepa_export, unique per month) and marks those invoices paid by
 * direct debit.  A month already exported writes nothing and returns 1
 * after saying so on stderr.  0, 1, or -1 after logging (nothing left).
 */
int gchc_sepa_export(PGconn *pg, redisContext *rc, const gchb_conf_t *conf,
    const char *month, const char *out, const char *by);


/* ------------------------------------------------------------------ */
/* guichetctl invite (invite.c)                                         */

/*
 * The first-credentials mailing: a new activation code (valid days days)
 * and an e-mail through the outbox, the i-th due i / rate minutes from
 * now, for every family without an account that has an e-mail address
 * and no open code; one transaction.  Prints what it queued.  0, or -1
 * after logging (nothing written).
 */
int gchc_invite(PGconn *pg, const gchb_conf_t *conf, int rate, int days);

/*
 * guichetctl invite --letter FAMILY [--days D]: a new activation code for
 * that family without an account (replacing one still open), valid D
 * days, printed with its dossier number for a letter; no e-mail.  0, or
 * -1 after saying why (nothing written).
 */
int gchc_invite_letter(PGconn *pg, const char *fid, int days);

/*
 * guichetctl outbox [--family F] [--kind K]: the e-mails not sent yet
 * (without an smtp relay, all of them: docs/worker.md, smtp), each with
 * its family, kind, address, subject and body.  0, or -1 after logging.
 */
int gchc_outbox(PGconn *pg, const char *fid, const char *kind);


/* ------------------------------------------------------------------ */
/* guichetctl check (check.c)                                           */

/* Compares Redis with PostgreSQL (places taken per session, claims per
 * child), one line per difference on stdout.  The number of differences,
 * or -1 after logging. */
int gchc_check(PGconn *pg, redisContext *rc);
/* guichetctl recount SESSION...: schedules the reaper's recount of each
 * session whose booked set PostgreSQL confirms.  0, or 1 when one was not
 * scheduled (unknown, or its booked set differs) or on an error. */
int gchc_recount_schedule(PGconn *pg, redisContext *rc, char **sids, int n);

/* guichetctl draw-verify ACTIVITY (draw.c): the draw's order recomputed
 * from its seed and entries in PostgreSQL, compared with its decisions;
 * prints both.  0 when they agree, 1 otherwise. */
int gchc_draw_verify(PGconn *pg, const char *activity_id);


#endif /* GCHC_H */
