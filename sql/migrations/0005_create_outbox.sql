-- 0005_create_outbox.sql -- e-mails to families, sent by guichet-worker.
--
-- The town file has no e-mail field (the engine refuses unknown fields),
-- so addresses live here, set with `guichetctl set-email FAMILY ADDRESS`.
-- The persister queues one outbox row per persisted demande in the same
-- transaction; unique (kind, ref) makes a replayed stream entry queue
-- nothing more.  The sender marks a row sent in the transaction that
-- claims it (at most once, see docs/worker.md).

create table family_email (
    family_id   text        not null,
    address     text        not null,
    updated_at  timestamptz not null default now(),
    constraint family_email_pkey primary key (family_id),
    constraint family_email_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint family_email_address check (address ~ '^[^@\s<>]+@[^@\s<>]+$')
);

create table outbox (
    id              bigint      generated always as identity,
    family_id       text        not null,
    kind            text        not null,
    ref             text        not null,
    subject         text        not null,
    body            text        not null,
    created_at      timestamptz not null default now(),
    next_attempt_at timestamptz not null default now(),
    sent_at         timestamptz,
    attempts        integer     not null default 0,
    last_error      text,
    constraint outbox_pkey primary key (id),
    constraint outbox_kind_ref_key unique (kind, ref),
    constraint outbox_family_fkey foreign key (family_id)
        references family (id)
);

create index outbox_pending_idx on outbox (next_attempt_at)
    where sent_at is null;
