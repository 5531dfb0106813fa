-- 0020_create_calendar_feed.sql -- a family's private iCalendar feed
-- (issue 24, GET /api/calendar/<token>.ics, office/calendar.c).
--
-- The feed's address carries 32 random bytes; only their SHA-256 (hex)
-- is kept here, so the address is shown once, when it is made.  One feed
-- a family: making a new one replaces the old (whose address then answers
-- 404), deleting it revokes it.

create table calendar_feed (
    family_id   text        not null,
    token_hash  text        not null,
    created_at  timestamptz not null default now(),
    constraint calendar_feed_pkey primary key (family_id),
    constraint calendar_feed_token_key unique (token_hash),
    constraint calendar_feed_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint calendar_feed_hash check (token_hash ~ '^[0-9a-f]{64}$')
);
