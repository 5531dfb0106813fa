-- 0140_erase_archived_family_words.sql -- archiving (RGPD) erases the
-- family's words from the audit log, which keeps who did what and when.
--
-- audit_log was append-only (0007: a trigger refused every update,
-- delete and truncate), so an archived family's rows kept what they had
-- recorded: its comment on a request of a new QF, the agents' refusal
-- reasons, the names, e-mails, logins, phones and addresses of its
-- people, the attendance notes, its IP addresses.  The town's
-- accountability is who did what, to what, and when; the family's
-- words go with its file.
--
-- audit_log_erased(detail) is the detail with every value that is not an
-- identifier, a code, an amount, a date or a count replaced by the marker
-- « effacé à l'archivage »; applied twice it changes nothing.
-- audit_log_erase(family) rewrites that way the rows of the family: those
-- it wrote (actor family:F), those about its file (target family:F), the
-- staff's decisions about it (detail family_id F), those about its
-- co-responsables (the targets it invited) and those of the duplicates
-- merged into it (family.merge, recursively); the address (ip) of the
-- rows not written by a staff account is emptied.  It returns how many
-- rows it rewrote.  guichet-office calls it in the archiving's
-- transaction (office/archive.c).
--
-- The trigger still refuses delete and truncate; an update passes only
-- when it keeps id, at, actor, action and target, sets detail to
-- audit_log_erased(old detail) and keeps or empties ip: nothing else can
-- be rewritten.
--
-- Archiving also empties the staff's free text about the family in the
-- rows it keeps for the accounting and the statistics: an enrolment's
-- refusal reason and an absence justification's (the marker), the
-- attendance notes (empty).
--
-- upload_erasure: the files (documents, message attachments) an
-- archiving's transaction deleted the rows of, unlinked after its commit
-- and then forgotten; a crash in between leaves the row, and the
-- archiving retried (409 family_archived) unlinks them.
--
-- The families archived before this migration are erased here, once; a
-- duplicate merged into a family is not (its file lives on in the family
-- kept, its rows go when that family is archived).

create function audit_log_erased(d jsonb) returns jsonb
language sql immutable strict as $$
    select case when jsonb_typeof(d) <> 'object' then d else
        coalesce((select jsonb_object_agg(e.key,
                      case when e.value = 'null'::jsonb
                            or e.key = any (array[
                               'family_id', 'child_id', 'booking_id',
                               'document_id', 'thread_id', 'invoice',
                               'decision', 'status', 'previous', 'resident',
                               'qf', 'from', 'to', 'valid_from', 'valid_to',
                               'amount_cents', 'method', 'after_payment',
                               'attachments', 'length', 'threads',
                               'documents_erased', 'audit_erased',
                               'children', 'type', 'version', 'cgu_version',
                               'paperless'])
                           then e.value
                           else to_jsonb('effacé à l''archivage'::text)
                      end)
                  from jsonb_each(d) e), '{}'::jsonb)
    end
$$;

create function audit_log_erase(p_family text) returns bigint
language plpgsql as $$
declare
    fams    text[];
    actors  text[];
    cors    text[];
    n       bigint;
begin
    with recursive fam (id) as (
        select p_family
        union
        select m.detail->>'from' from audit_log m
          join fam on m.target = 'family:' || fam.id
         where m.action = 'family.merge' and m.detail->>'from' is not null
    )
    select array_agg(id) into fams from fam;

    actors := array(select 'family:' || f from unnest(fams) f);
    cors := array(select i.target from audit_log i
                   where i.actor = any (actors)
                     and i.action = 'co_responsable.invite');

    with ids (id) as (
        select id from audit_log where actor = any (actors)
        union
        select id from audit_log where target = any (actors)
        union
        select id from audit_log where detail->>'family_id' = any (fams)
        union
        select id from audit_log where target = any (cors)
    ),
    done as (
        update audit_log a
           set detail = audit_log_erased(a.detail),
               ip = case when exists (select 1 from staff_account s
                                       where s.login = a.actor)
                         then a.ip end
          from ids
         where a.id = ids.id
           and (a.detail <> audit_log_erased(a.detail)
                or (a.ip is not null
                    and not exists (select 1 from staff_account s
                                     where s.login = a.actor)))
        returning 1
    )
    select count(*) into n from done;

    return n;
end;
$$;

-- what the erasure looks for, and the journal's family filter
-- (GET /api/staff/audit?family=): without them both read the whole log
-- (a log of 1,000,000 rows, a family's 200 of them: the erasure 15-33 ms
-- instead of 0.7-0.8 s, under the catalogue's lock; the filter about 1 ms
-- instead of 145-230 ms, measured on the test stack's PostgreSQL 15)
create index audit_log_actor_idx on audit_log (actor);
create index audit_log_family_idx on audit_log ((detail->>'family_id'));

create function audit_log_erase_only() returns trigger
language plpgsql as $$
begin
    if new.id = old.id and new.at = old.at and new.actor = old.actor
        and new.action = old.action and new.target = old.target
        and new.detail = audit_log_erased(old.detail)
        and (new.ip is null or new.ip = old.ip)
    then
        return new;
    end if;
    raise exception 'audit_log is append-only: an update may only erase'
        ' a row''s free text (audit_log_erase)';
end;
$$;

drop trigger audit_log_append_only on audit_log;

create trigger audit_log_append_only
    before delete or truncate on audit_log
    for each statement execute function audit_log_append_only();

create trigger audit_log_erase_only
    before update on audit_log
    for each row execute function audit_log_erase_only();

create table upload_erasure (
    stored_name     text        not null,
    family_id       text        not null,
    queued_at       timestamptz not null default now(),
    constraint upload_erasure_pkey primary key (stored_name)
);

create index upload_erasure_family_idx on upload_erasure (family_id);

create temporary table archived_family on commit drop as
    select f.id from family f
     where f.archived_at is not null
       and not exists (select 1 from audit_log m
                        where m.action = 'family.merge'
                          and m.detail->>'from' = f.id);

select audit_log_erase(id) from archived_family;

update enrolment set reason = 'effacé à l''archivage'
 where reason is not null and reason <> 'effacé à l''archivage'
   and child_id in (select c.id from child c
                     where c.family_id in (select id from archived_family));

update booking_justification set refusal_reason = 'effacé à l''archivage'
 where refusal_reason is not null
   and refusal_reason <> 'effacé à l''archivage'
   and family_id in (select id from archived_family);

update attendance set note = ''
 where note <> ''
   and booking_id in (select b.id from booking b
                       where b.family_id in (select id from archived_family));
