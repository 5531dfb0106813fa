-- 0007_create_staff_account.sql -- the town's staff and the audit log.
--
-- guichet-office's back office is for staff accounts (login, argon2id
-- password hash, role); their tokens are "staff:<login>".  Every staff
-- action (and every family action of the office that a town must be able
-- to trace) is one row of audit_log, written in the transaction of the
-- action.  audit_log is append-only: a trigger refuses update and delete.

create table staff_account (
    login           text        not null,
    name            text        not null,
    password_hash   text,
    role            text        not null,
    active          boolean     not null default true,
    created_at      timestamptz not null default now(),
    constraint staff_account_pkey primary key (login),
    constraint staff_account_role check (role in ('agent', 'regie', 'admin')),
    constraint staff_account_login check (login ~ '^[a-z0-9._-]{1,64}$')
);

create table audit_log (
    id          bigint      generated always as identity,
    at          timestamptz not null default now(),
    actor       text        not null,
    action      text        not null,
    target      text        not null,
    detail      jsonb       not null default '{}',
    ip          text,
    constraint audit_log_pkey primary key (id)
);

create index audit_log_at_idx on audit_log (at);
create index audit_log_target_idx on audit_log (target);

create function audit_log_append_only() returns trigger
language plpgsql as $$
begin
    raise exception 'audit_log is append-only';
end;
$$;

create trigger audit_log_append_only
    before update or delete or truncate on audit_log
    for each statement execute function audit_log_append_only();
