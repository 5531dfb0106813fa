-- 0025_add_session_onsite_published.sql -- what the on-site counters were
-- built on.
--
-- The publisher creates {s:<sid>}:onsite (places left at the counter) with
-- SET NX.  Like places_published for the online counter (0002), this
-- records the on-site quota (places - places_online) the live counter was
-- built on, so that a change of places moves the on-site counter by the
-- difference too (load-town through the publisher, guichet-office at once:
-- office/activity.c).  Null: never published.  Sessions published before
-- this migration were published with their current quota.

alter table session add column onsite_published integer;

update session set onsite_published = places - places_online
    where places_published is not null;
