-- bench/worker_drain.py --ab: the foreign key 0017 replaced (the "before";
-- with --ab-worker, a worker of before 0017 that does not check families)
alter table demande add constraint demande_family_fkey foreign key
    (family_id) references family (id);
