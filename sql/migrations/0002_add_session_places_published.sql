-- 0002_add_session_places_published.sql -- what the counters were built on.
--
-- The publisher creates {T}:s:<sid>:left with SET NX (live counters are never
-- overwritten).  When a reloaded town file changes a session's places, the
-- publisher shifts the live counter by places_online - places_published and
-- then records places_online here.  Null: never published.

alter table session add column places_published integer;
