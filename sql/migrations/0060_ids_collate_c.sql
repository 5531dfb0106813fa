-- 0060_ids_collate_c.sql -- identifiers compared byte by byte (issue 20).
--
-- Every text column of a town's tables that holds an identifier -- "id",
-- "<x>_id", "code", "<x>_code", "ref", "kind" -- takes the collation "C".
-- Their indexes compare keys with memcmp() instead of the database's
-- locale (strcoll(), even under C.UTF-8: PostgreSQL 15 treats only "C"
-- and "POSIX" as byte order).  A persisted booking inserts seven text
-- keys into the indexes of demande, booking and outbox, each key compared
-- about ten times on its way down: `perf` of the persister's backend put
-- 12 % of its time in bttextcmp and the locale's comparison
-- (docs/benchmarks.md, "The worker alone", COPY), and a drain on a
-- cluster whose default collation is C cost 2-3 µs less a row.
--
-- Equality is the same: every collation of these databases is
-- deterministic (two strings are equal when their bytes are), so no
-- unique key, foreign key or lookup changes meaning.  Only the order of
-- identifiers changes, and only where the database's locale was not
-- already byte order (C.UTF-8, the tests' and the benchmark's, is
-- codepoint order, the same as the bytes of UTF-8); no page shows
-- identifiers sorted for a person.  Names, labels, logins and texts keep
-- the database's collation.
--
-- Comparing a "C" column with a column of the default collation compares
-- in "C" (the default collation yields), so a query is never refused; but
-- only an index of the same collation serves it.  A new table's
-- identifier columns therefore take `collate "C"` too (docs/architecture.md,
-- "Towns in PostgreSQL").
--
-- The columns are found by their names in the current town's schema (the
-- migration runs once per town), so that tables made by the migrations
-- before this one are all covered.  ALTER ... TYPE refuses a column that
-- a view uses: the schema's views are dropped and made again from their
-- own definitions (pg_get_viewdef), in the order they were created
-- (those of an extension, such as pg_stat_statements, are left alone).  A
-- column a generated column is computed from keeps its collation
-- (invoice.regie_code, of the invoice's number: not a key of the rush).  No
-- table is rewritten (text to text is binary coercible); the indexes on
-- these columns are rebuilt.

do $$
declare
    v       record;
    t       record;
    names   text[] := '{}';
    defs    text[] := '{}';
    i       int;
begin
    for v in select c.relname, pg_get_viewdef(c.oid) def from pg_class c
             where c.relnamespace = current_schema()::regnamespace
               and c.relkind = 'v'
               and not exists (select 1 from pg_depend d
                   where d.classid = 'pg_class'::regclass
                     and d.objid = c.oid and d.deptype = 'e')
             order by c.oid
    loop
        names := names || v.relname::text;
        defs := defs || v.def;
    end loop;

    for i in reverse coalesce(array_length(names, 1), 0) .. 1 loop
        execute format('drop view if exists %I cascade', names[i]);
    end loop;

    for t in select c.table_name, string_agg(format(
                 'alter column %I type text collate "C"', c.column_name),
                 ', ' order by c.column_name) alters
             from information_schema.columns c
             join information_schema.tables b
               on b.table_schema = c.table_schema
              and b.table_name = c.table_name
             where c.table_schema = current_schema()
               and b.table_type = 'BASE TABLE'
               and not exists (select 1 from pg_depend d
                   where d.classid = 'pg_class'::regclass
                     and d.objid = format('%I.%I', c.table_schema,
                                          c.table_name)::regclass
                     and d.deptype = 'e')
               and c.data_type = 'text'
               and (c.column_name in ('id', 'code', 'ref', 'kind')
                    or c.column_name like '%\_id'
                    or c.column_name like '%\_code')
               and not exists (select 1
                   from information_schema.column_column_usage u
                   where u.table_schema = c.table_schema
                     and u.table_name = c.table_name
                     and u.column_name = c.column_name)
             group by c.table_name
             order by c.table_name
    loop
        execute format('alter table %I %s', t.table_name, t.alters);
    end loop;

    for i in 1 .. coalesce(array_length(names, 1), 0) loop
        execute format('create view %I as %s', names[i], defs[i]);
    end loop;
end
$$;
