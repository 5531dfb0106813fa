-- 0131_demande_mail_batch.sql -- a batch's e-mails queued as one row
-- (issue 20).
--
-- The persister wrote one outbox row per demande (kind 'demande', its
-- request_id as ref, no text: 0016), in the transaction that persists it:
-- a heap tuple and three index entries, 3.7-4 µs of PostgreSQL's CPU a
-- persisted booking during the rush (docs/benchmarks.md, "The outbox row
-- and two indexes of demande").  It now writes ONE row per batch,
-- demande_mail_batch, holding the numbers of the batch's demandes that
-- get an e-mail, in the batch's order; which ones is decided there, from
-- the facts of that moment, exactly as before (worker/batch.c).
--
-- The mailer (worker/mail.c) turns them into the same outbox rows at its
-- own pace: demande_mail_expand(max), first thing of each round, in one
-- transaction, inserts the outbox rows of up to max numbers past its
-- cursor (demande_mail_cursor: a batch id and how many of its numbers are
-- done) and advances it.  The cursor walks batch ids, which follow the
-- persister's commits (one batch at a time, under its advisory lock):
-- demande numbers do not (a number is taken before its entry is added to
-- the stream), so a cursor on numbers would skip some.  A replayed batch
-- queues nothing (the persister queues only the demandes it inserted),
-- and the expansion's insert keeps "on conflict (kind, ref) do nothing".
-- The rows take the batch row's time (its transaction's, as the
-- persister's rows did), so that a demande's e-mail still goes before a
-- cancellation persisted after it (the mailer sends the oldest first; of
-- the same transaction, demandes first: worker/mail.c).  From the outbox
-- row on,
-- nothing changes: the claim, the retries, a family without an address
-- (its row waits), at most once.  Batch rows the cursor has passed are
-- deleted by the expansion.  A family archived meanwhile gets none: its
-- archiving deleted its outbox rows (office/family.c), so its queued
-- numbers are skipped.
--
-- outbox_mail, the outbox as the families get it, also shows the e-mails
-- queued and not yet expanded (id, created_at null: no outbox row yet).

create table demande_mail_batch (
    id          bigint      generated always as identity,
    numbers     bigint[]    not null,
    created_at  timestamptz not null default now(),
    constraint demande_mail_batch_pkey primary key (id)
);

create table demande_mail_cursor (
    one         boolean     not null default true,
    batch_id    bigint      not null default 0,
    done        integer     not null default 0,
    constraint demande_mail_cursor_pkey primary key (one),
    constraint demande_mail_cursor_one check (one)
);

insert into demande_mail_cursor default values;

create function demande_mail_expand(p_max integer) returns integer
language plpgsql as $$
declare
    c   record;
    b   record;
    k   integer;
    m   integer;
    n   integer := 0;
begin
    select batch_id, done into c from demande_mail_cursor for update;
    for b in select id, numbers, created_at from demande_mail_batch
             where id >= c.batch_id order by id
    loop
        exit when n >= p_max;
        k := case when b.id = c.batch_id then c.done else 0 end;
        m := least(cardinality(b.numbers) - k, p_max - n);
        if m > 0 then
            insert into outbox (family_id, kind, ref, created_at,
                next_attempt_at)
            select d.family_id, 'demande', d.request_id, b.created_at,
                b.created_at
            from unnest(b.numbers[k + 1 : k + m]) with ordinality u(num, o)
            join demande d on d.number = u.num
            join family f on f.id = d.family_id and f.archived_at is null
            order by u.o
            on conflict (kind, ref) do nothing;
            n := n + m;
        end if;
        update demande_mail_cursor set batch_id = b.id, done = k + m;
        c.batch_id := b.id;
        c.done := k + m;
    end loop;
    delete from demande_mail_batch
    where id < c.batch_id
       or (id = c.batch_id and cardinality(numbers) = c.done);
    return n;
end
$$;

create or replace view outbox_mail as
    select o.id, o.family_id, o.kind, o.ref,
        coalesce(o.subject, m.subject) subject,
        coalesce(o.body, m.body) body,
        o.created_at, o.next_attempt_at, o.sent_at, o.attempts, o.last_error
    from outbox o
    left join lateral demande_mail(o.ref) m
        on o.kind = 'demande' and o.body is null
    union all
    select null, d.family_id, 'demande', d.request_id, m.subject, m.body,
        null, b.created_at, null, 0, null
    from demande_mail_cursor c
    join demande_mail_batch b on b.id >= c.batch_id
    cross join lateral unnest(b.numbers) with ordinality u(num, o)
    join demande d on d.number = u.num
    join family f on f.id = d.family_id and f.archived_at is null
    cross join lateral demande_mail(d.request_id) m
    where (b.id > c.batch_id or u.o > c.done)
      and not exists (select 1 from outbox x
                      where x.kind = 'demande' and x.ref = d.request_id);
