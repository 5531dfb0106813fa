-- 0023_create_account_activation.sql -- "Créer mon espace": a family the
-- town created activates its own account (issue 25).
--
-- The town sends each family without an account its dossier number (the
-- family's id) and a code (guichetctl invite: an e-mail through the
-- outbox, or a letter): family_code keeps the code's SHA-256 only, until
-- it expires or is used.  With both, the family accepts the terms of use
-- (cgu_version: a new version asks again), chooses a login and a password
-- (argon2id, hashed by guichet-office) and gets an activation link by
-- e-mail, valid 24 hours, single use: account_activation keeps the
-- link's SHA-256 and what the family chose.  Opening the link sets
-- family.login, family.password_hash and family.activated_at and uses
-- the code; a reload of the town file, which has no login for that
-- family, keeps them (load-town).

create table cgu_version (
    version         integer     not null,
    published_at    timestamptz not null default now(),
    title           text        not null,
    constraint cgu_version_pkey primary key (version),
    constraint cgu_version_positive check (version > 0)
);

insert into cgu_version (version, title)
    values (1, 'Conditions générales d''utilisation de l''Espace Famille');

alter table family
    add column cgu_version integer,
    add column cgu_accepted_at timestamptz,
    add column activated_at timestamptz,
    add constraint family_cgu_version_fkey foreign key (cgu_version)
        references cgu_version (version);

create table family_code (
    family_id       text        not null,
    code_hash       text        not null,
    created_at      timestamptz not null default now(),
    expires_at      timestamptz not null,
    used_at         timestamptz,
    constraint family_code_pkey primary key (family_id),
    constraint family_code_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint family_code_hash check (code_hash ~ '^[0-9a-f]{64}$')
);

create table account_activation (
    token_hash      text        not null,
    family_id       text        not null,
    login           text        not null,
    password_hash   text        not null,
    cgu_version     integer     not null,
    created_at      timestamptz not null default now(),
    expires_at      timestamptz not null,
    used_at         timestamptz,
    constraint account_activation_pkey primary key (token_hash),
    constraint account_activation_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint account_activation_cgu_fkey foreign key (cgu_version)
        references cgu_version (version),
    constraint account_activation_hash check (token_hash ~ '^[0-9a-f]{64}$')
);

create index account_activation_family_idx on account_activation
    (family_id);
