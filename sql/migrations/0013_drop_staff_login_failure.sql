-- 0013_drop_staff_login_failure.sql -- staff logins are throttled like
-- families' (issue 18).
--
-- Five failures locked a staff login for 15 minutes, whoever tried and
-- whatever the password (anyone could lock `admin` out before the
-- opening).  guichet-office now counts the attempts in Redis per login and
-- client address, and per address, before the password is checked, with
-- the module's policy (gch_login_throttle(), docs/reliability.md,
-- "Security"): the table of that lock is no longer read nor written.

drop table staff_login_failure;
