-- bench/worker_drain.py --ab: the two foreign keys 0014 dropped (the "before")
alter table booking add constraint booking_family_fkey foreign key
    (family_id) references family (id);
alter table outbox add constraint outbox_family_fkey foreign key
    (family_id) references family (id);
