-- 0046_create_co_responsable.sql -- a family's second legal
-- representative with a login of their own on the same file (issue 25,
-- office/coresp.c).
--
-- The family invites them (first name, last name, e-mail): the office
-- answers a single-use invitation link, valid 7 days, that the family
-- hands over (only its SHA-256 is kept); with it the co-responsable
-- chooses a login and a password.  Their login maps to the family's id
-- in {T}:logins (guichet-worker publishes family logins and these), so
-- the module's token names the family, whoever logged in: both parents
-- see and do the same.  Removing the co-responsable (the family) sets
-- removed_at; the login leaves {T}:logins and the family's sessions end.
--
-- A login is unique across family.login and co_responsable.login: the
-- triggers below refuse a login the other table holds (23505, as a unique
-- index would).

create table co_responsable (
    id                  bigint      generated always as identity,
    family_id           text        not null,
    first_name          text        not null,
    last_name           text        not null,
    email               text        not null,
    invite_hash         text        not null,
    invite_expires_at   timestamptz not null,
    login               text,
    password_hash       text,
    created_at          timestamptz not null default now(),
    activated_at        timestamptz,
    removed_at          timestamptz,
    constraint co_responsable_pkey primary key (id),
    constraint co_responsable_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint co_responsable_invite_key unique (invite_hash),
    constraint co_responsable_login_key unique (login),
    constraint co_responsable_names_check check
        (length(first_name) between 1 and 100
         and length(last_name) between 1 and 100),
    constraint co_responsable_email_check check
        (email ~ '^[^@[:space:]<>]+@[^@[:space:]<>]+$'
         and length(email) <= 127),
    constraint co_responsable_account_check check
        ((login is null) = (password_hash is null)
         and (login is null) = (activated_at is null))
);

-- one co-responsable (invited or active) per family at a time
create unique index co_responsable_family_idx on co_responsable (family_id)
    where removed_at is null;

create function co_responsable_login_free() returns trigger
language plpgsql as $$
begin
    if new.login is null then
        return new;
    end if;
    if tg_table_name = 'family' and exists
        (select 1 from co_responsable where login = new.login)
       or tg_table_name = 'co_responsable' and exists
        (select 1 from family where login = new.login)
    then
        raise exception 'login % is taken', new.login
            using errcode = 'unique_violation';
    end if;
    return new;
end;
$$;

create trigger family_login_free before insert or update of login
    on family for each row execute function co_responsable_login_free();

create trigger co_responsable_login_free before insert or update of login
    on co_responsable for each row
    execute function co_responsable_login_free();
