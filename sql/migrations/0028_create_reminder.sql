-- 0028_create_reminder.sql -- e-mails the town schedules (issue 26):
-- booking opens soon, a deadline near, invoices due, or its own text.
--
-- Scheduling a reminder queues, in the same transaction, one outbox row
-- per family it concerns, kind 'reminder', ref '<reminder id>:<family
-- id>' (unique: each family at most once per reminder), next_attempt_at
-- = send_at: guichet-worker sends them when due, at its outbox's rate
-- (worker/mail.c, 50 a second at most).  Cancelling deletes the rows not
-- yet sent.

create table reminder (
    id              bigint      generated always as identity,
    kind            text        not null,
    activity_id     text,
    send_at         timestamptz not null,
    subject         text        not null,
    body            text        not null,
    families        integer     not null,
    created_at      timestamptz not null default now(),
    created_by      text        not null,
    cancelled_at    timestamptz,
    constraint reminder_pkey primary key (id),
    constraint reminder_kind_check check (kind in
        ('opening', 'deadline', 'invoice_due', 'custom')),
    constraint reminder_activity_check check
        ((kind = 'invoice_due') = (activity_id is null)),
    constraint reminder_subject_check check
        (length(subject) between 1 and 200),
    constraint reminder_body_check check (length(body) between 1 and 5000)
);
