-- 0006_add_booking_channel.sql -- where a booking's place came from.
--
-- Each session has two quotas (DOMAIN.md): the online share, sold through
-- the API, and the on-site share, booked by the town's staff at the counter
-- (POST /api/staff/bookings).  The publisher counts them apart: Redis
-- {T}:s:<sid>:left for online places, {T}:s:<sid>:onsite for on-site ones.

alter table booking add column channel text not null default 'online';

alter table booking add constraint booking_channel_check
    check (channel in ('online', 'onsite'));
