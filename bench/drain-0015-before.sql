-- bench/worker_drain.py --ab: the three foreign keys 0015 dropped (the "before")
alter table booking add constraint booking_demande_fkey foreign key
    (demande_number) references demande (number);
alter table booking add constraint booking_child_fkey foreign key
    (child_id) references child (id);
alter table booking add constraint booking_session_fkey foreign key
    (session_id) references session (id);
