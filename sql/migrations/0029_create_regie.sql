-- 0029_create_regie.sql -- several régies (issue 26): each activity
-- belongs to one régie (activity_regie; none: the régie 'principale'),
-- and the month's accounting export can be made per régie, each invoice
-- counted for the lines of that régie's activities (office/counter.c).
-- Invoices keep one numbering and one invoice per family and month.

create table regie (
    code        text        not null,
    name        text        not null,
    created_at  timestamptz not null default now(),
    constraint regie_pkey primary key (code),
    constraint regie_code_check check (code ~ '^[a-z0-9_-]{1,32}$'),
    constraint regie_name_check check (length(name) between 1 and 200)
);

insert into regie (code, name) values ('principale', 'Régie principale');

create table activity_regie (
    activity_id text        not null,
    regie_code  text        not null,
    constraint activity_regie_pkey primary key (activity_id),
    constraint activity_regie_activity_fkey foreign key (activity_id)
        references activity (id) on delete cascade,
    constraint activity_regie_regie_fkey foreign key (regie_code)
        references regie (code)
);
