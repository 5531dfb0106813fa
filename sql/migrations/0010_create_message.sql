-- 0010_create_message.sql -- the messagerie between families and the
-- town's services.
--
-- A thread belongs to one family and one service ("enfance", "scolaire",
-- "regie"); its messages are written by the family or by a staff member
-- (author = the staff login).  read_at is set when the other side opens
-- the thread: unread counts are the messages of the other side whose
-- read_at is null.

create table message_thread (
    id          bigint      generated always as identity,
    family_id   text        not null,
    service     text        not null,
    subject     text        not null,
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    constraint message_thread_pkey primary key (id),
    constraint message_thread_family_fkey foreign key (family_id)
        references family (id),
    constraint message_thread_service check (service in
        ('enfance', 'scolaire', 'regie')),
    constraint message_thread_subject check (length(subject) between 1
        and 200)
);

create index message_thread_family_idx on message_thread (family_id,
    updated_at);

create table message (
    id          bigint      generated always as identity,
    thread_id   bigint      not null,
    from_staff  text,
    body        text        not null,
    created_at  timestamptz not null default now(),
    read_at     timestamptz,
    constraint message_pkey primary key (id),
    constraint message_thread_fkey foreign key (thread_id)
        references message_thread (id),
    constraint message_body check (length(body) between 1 and 5000)
);

create index message_thread_idx on message (thread_id, id);
create index message_unread_idx on message (thread_id)
    where read_at is null;
