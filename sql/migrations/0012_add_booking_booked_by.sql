-- 0012_add_booking_booked_by.sql -- who booked an on-site place.
--
-- The counter (POST /api/staff/bookings) books the on-site quota for a
-- family; its stream entry names the agent ("agent": the staff login) and
-- the worker keeps it here (issue 18).  Online bookings, and on-site ones
-- made before this column, have none.  No foreign key: a staff account is
-- never deleted (deactivated at most), and the booking outlives it anyway.

alter table booking add column booked_by text;

alter table booking add constraint booking_booked_by_check
    check (booked_by is null or channel = 'onsite');
