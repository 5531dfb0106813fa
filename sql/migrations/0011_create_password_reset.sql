-- 0011_create_password_reset.sql -- "mot de passe oublié" links.
--
-- A link carries 32 random bytes; only their SHA-256 (hex) is kept here.
-- It is valid until expires_at (one hour) and used once (used_at, set in
-- the transaction that changes the password).  created_at counts the
-- links of the last hour (at most three per family).

create table password_reset (
    token_hash  text        not null,
    family_id   text        not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz,
    constraint password_reset_pkey primary key (token_hash),
    constraint password_reset_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint password_reset_hash check (token_hash ~ '^[0-9a-f]{64}$')
);

create index password_reset_family_idx on password_reset (family_id,
    created_at);
