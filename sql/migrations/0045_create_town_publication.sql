-- 0045_create_town_publication.sql -- what the town publishes to every
-- family (issue 25): its own documents (rules, price lists, menus: PDF
-- files staff upload in the back office) and its news ("Actualités"),
-- read on the family's dashboard (office/publication.c).
--
-- A document's file lives in office_upload_dir under stored_name, like
-- the families' documents; withdrawing it sets removed_at (the row stays
-- for the audit log's sake, the file is deleted).  A news item is shown
-- from show_from to show_until (Europe/Paris days, both included; no end
-- when null) unless removed.

create table town_publication (
    id              bigint      generated always as identity,
    title           text        not null,
    category        text        not null,
    filename        text        not null,
    size            bigint      not null,
    sha256          text        not null,
    stored_name     text        not null,
    published_at    timestamptz not null default now(),
    published_by    text        not null,
    removed_at      timestamptz,
    removed_by      text,
    constraint town_publication_pkey primary key (id),
    constraint town_publication_stored_name_key unique (stored_name),
    constraint town_publication_title_check check
        (length(title) between 1 and 200),
    constraint town_publication_category_check check (category in
        ('reglement', 'tarifs', 'menus', 'autre')),
    constraint town_publication_size_check check (size > 0),
    constraint town_publication_sha256_check check
        (sha256 ~ '^[0-9a-f]{64}$'),
    constraint town_publication_removed_check check
        ((removed_at is null) = (removed_by is null))
);

create index town_publication_current_idx on town_publication (published_at)
    where removed_at is null;

create table town_news (
    id              bigint      generated always as identity,
    title           text        not null,
    body            text        not null,
    show_from       date        not null,
    show_until      date,
    created_at      timestamptz not null default now(),
    created_by      text        not null,
    updated_at      timestamptz not null default now(),
    updated_by      text        not null,
    removed_at      timestamptz,
    removed_by      text,
    constraint town_news_pkey primary key (id),
    constraint town_news_title_check check (length(title) between 1 and 200),
    constraint town_news_body_check check (length(body) between 1 and 5000),
    constraint town_news_period_check check
        (show_until is null or show_from <= show_until),
    constraint town_news_removed_check check
        ((removed_at is null) = (removed_by is null))
);

create index town_news_current_idx on town_news (show_from)
    where removed_at is null;
