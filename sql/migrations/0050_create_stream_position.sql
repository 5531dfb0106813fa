-- 0050_create_stream_position.sql -- how far guichet-worker has persisted
-- the town's stream {T}:stream (issue 20).
--
-- The worker read the stream with the consumer group `persist`
-- (XREADGROUP, XACK after COMMIT): Redis wrote an XCLAIM per entry read and
-- an XACK per batch to its AOF (228 of a booking's 1,862 bytes).  It now
-- reads with plain XREAD after the id kept here, and moves this id forward
-- in the same transaction as the batch's rows: the rows and the position
-- commit together, so a crash before COMMIT reads the batch again and a
-- crash after it reads on from the next entry (exactly once, without a
-- pending list).  The update is a compare-and-set (`where last_id =` the
-- id the batch was read after): of two workers that read the same entries,
-- the second finds the position moved, writes nothing and reads again.
--
-- One row.  '0-0' at first: a worker upgraded from the consumer group
-- reads the whole stream that is left once, and its rows already persisted
-- are found by "on conflict do nothing" (worker/batch.c's replay path).

create table stream_position (
    id              integer     not null default 1,
    last_id         text        not null,
    constraint stream_position_pkey primary key (id),
    constraint stream_position_one check (id = 1),
    constraint stream_position_id_check check
        (last_id ~ '^[0-9]+-[0-9]+$')
);

insert into stream_position (id, last_id) values (1, '0-0');

-- The compare-and-set of a batch (worker/batch.c, before its COMMIT):
-- raises SQLSTATE GCH01 when another worker moved the position first, so
-- that the batch rolls back and the worker reads the position again.
create function stream_position_move(from_id text, to_id text)
returns void language plpgsql as $$
begin
    update stream_position set last_id = to_id
     where id = 1 and last_id = from_id;
    if not found then
        raise exception 'stream position is no longer %', from_id
            using errcode = 'GCH01';
    end if;
end $$;
