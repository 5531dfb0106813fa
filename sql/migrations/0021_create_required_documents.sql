-- 0021_create_required_documents.sql -- the documents an activity
-- requires and the documents the town file has on record, as rows
-- (issue 25: documents ahead).
--
-- The town file says which documents each activity requires
-- (activities[].required_documents) and which documents a family already
-- has (families[].documents[], each for the whole family or for one
-- child).  Until now only the stored catalogue (catalogue.json) kept
-- them, for the engine.  guichet-office lists, for each child and
-- activity, what is required and what is missing, about to expire or
-- refused, and refuses an enrolment request while a required document is
-- missing: it reads these two tables, never the catalogue's text.
--
-- town_documents_sync() rebuilds both from catalogue.json (the town
-- file as load-town stored it; uploads stay in the document table): it
-- deletes the rows the file no longer has and inserts the new ones, and
-- returns how many rows it changed.  guichetctl load-town calls it in its
-- transaction after storing the catalogue; it runs here once, so a
-- database loaded before this migration has its rows.

create table activity_document (
    activity_id     text        not null,
    type            text        not null,
    position        integer     not null,
    constraint activity_document_pkey primary key (activity_id, type),
    constraint activity_document_activity_fkey foreign key (activity_id)
        references activity (id) on delete cascade
);

create table town_document (
    family_id       text        not null,
    position        integer     not null,
    type            text        not null,
    child_id        text,
    valid_from      date,
    valid_to        date,
    constraint town_document_pkey primary key (family_id, position),
    constraint town_document_family_fkey foreign key (family_id)
        references family (id) on delete cascade,
    constraint town_document_child_fkey foreign key (child_id)
        references child (id) on delete cascade
);

create index town_document_child_idx on town_document (child_id);

create function town_documents_sync() returns bigint
language plpgsql as $$
declare
    j   jsonb;
    n   bigint := 0;
    k   bigint;
begin
    select json::jsonb into j from catalogue where id = 1;
    if j is null then
        return 0;
    end if;

    with want as (
        select a->>'id' as activity_id, d.type,
               (d.ord - 1)::integer as position
        from jsonb_array_elements(coalesce(j->'activities', '[]')) a,
             jsonb_array_elements_text(
                 coalesce(a->'required_documents', '[]'))
                 with ordinality d(type, ord)
    )
    delete from activity_document x
    where not exists (select 1 from want w
                      where w.activity_id = x.activity_id
                        and w.type = x.type and w.position = x.position);
    get diagnostics k = row_count;
    n := n + k;

    insert into activity_document (activity_id, type, position)
    select a->>'id', d.type, (d.ord - 1)::integer
    from jsonb_array_elements(coalesce(j->'activities', '[]')) a,
         jsonb_array_elements_text(coalesce(a->'required_documents', '[]'))
             with ordinality d(type, ord)
    where exists (select 1 from activity t where t.id = a->>'id')
    on conflict (activity_id, type) do nothing;
    get diagnostics k = row_count;
    n := n + k;

    with want as (
        select f->>'id' as family_id, (d.ord - 1)::integer as position,
               d.doc->>'type' as type, d.doc->>'child_id' as child_id,
               (d.doc->>'valid_from')::date as valid_from,
               (d.doc->>'valid_to')::date as valid_to
        from jsonb_array_elements(coalesce(j->'families', '[]')) f,
             jsonb_array_elements(coalesce(f->'documents', '[]'))
                 with ordinality d(doc, ord)
    )
    delete from town_document x
    where not exists (select 1 from want w
                      where w.family_id = x.family_id
                        and w.position = x.position and w.type = x.type
                        and w.child_id is not distinct from x.child_id
                        and w.valid_from is not distinct from x.valid_from
                        and w.valid_to is not distinct from x.valid_to);
    get diagnostics k = row_count;
    n := n + k;

    insert into town_document (family_id, position, type, child_id,
                               valid_from, valid_to)
    select f->>'id', (d.ord - 1)::integer, d.doc->>'type',
           d.doc->>'child_id', (d.doc->>'valid_from')::date,
           (d.doc->>'valid_to')::date
    from jsonb_array_elements(coalesce(j->'families', '[]')) f,
         jsonb_array_elements(coalesce(f->'documents', '[]'))
             with ordinality d(doc, ord)
    where exists (select 1 from family t where t.id = f->>'id')
    on conflict (family_id, position) do nothing;
    get diagnostics k = row_count;
    n := n + k;

    return n;
end;
$$;

select town_documents_sync();
