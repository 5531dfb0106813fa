-- bench/worker_drain.py --ab: APPLY of 0060's undo: the identifiers back
-- to the database's collation (UNDO: sql/migrations/0060_ids_collate_c.sql).
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
                 'alter column %I type text collate "default"', c.column_name),
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
