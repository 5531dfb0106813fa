-- 0080_create_waitlist_entry.sql -- the waiting lists (issue 23) as
-- PostgreSQL keeps them, so that a Redis that lost its data gets them back.
--
-- The lists live in Redis ({T}:s:<sid>:wait, :waiters, :offer; the booking
-- saga, DELETE /api/waitlist, the promoter and the back office change
-- them).  guichet-worker copies them here each second when they changed
-- (worker/promote.c, gchw_waitlist_mirror: the whole copy in one
-- transaction, never from a Redis without {T}:catalogue:gen, which is
-- what a Redis that lost its data looks like), and its rebuild after a
-- data loss (worker/publish.c) pushes them back in their order, but the
-- children booked on the session meanwhile (PostgreSQL's bookings).
-- rank: the place on the list from 1; 0 for a child a place was offered
-- to (offer_until_ms its end): back at the head of the list, it is offered
-- the place again.

create table waitlist_entry (
    session_id      text        not null,
    child_id        text        not null,
    family_id       text        not null,
    entry_id        text        not null,
    joined_ms       bigint      not null,
    rank            integer     not null,
    offer_until_ms  bigint,
    constraint waitlist_entry_pkey primary key (session_id, child_id),
    constraint waitlist_entry_rank check (rank >= 0)
);
