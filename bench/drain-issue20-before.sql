-- bench/worker_drain.py --ab: the schema as this session found it (0014),
-- for a before/after of 0015-0017 in one invocation, with --ab-worker a
-- worker of a23f4db (the e-mail rendered when queued, no family check):
-- the four foreign keys checked per booking back.  0016's nullable
-- subject and body, function and view do not change what that worker
-- writes.
alter table booking add constraint booking_demande_fkey foreign key
    (demande_number) references demande (number);
alter table booking add constraint booking_child_fkey foreign key
    (child_id) references child (id);
alter table booking add constraint booking_session_fkey foreign key
    (session_id) references session (id);
alter table demande add constraint demande_family_fkey foreign key
    (family_id) references family (id);
