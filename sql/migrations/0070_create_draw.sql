-- 0070_create_draw.sql -- opening by draw (issue 23, second half).
--
-- An activity whose town file says "opening": {"mode": "draw", ...}
-- (docs/town-file.md) takes entries between entries_from and
-- booking_opens_at, then the worker decides them in a public order
-- (docs/rules.md, "Opening by draw"):
--
--   draw_seed   the seed of each draw activity, drawn by load-town the
--               first time it loads the activity (or the town file's) and
--               never changed after: it is published in the catalogue
--               before the entry window closes;
--   draw_run    a draw the worker started: its seed, its number of
--               entries, when it was decided (null while it runs; the
--               publisher then marks the activity "drawn" in the
--               catalogue, and first come, first served begins);
--   draw_entry  the entries the draw decided, as Redis held them at the
--               opening ({T}:a:<aid>:entries), so that guichetctl
--               draw-verify recomputes the order from PostgreSQL alone.
--
-- The decisions themselves are booking demandes of the family with the
-- Idempotency-Key "dr.<activity id>"; demande_mail() (0047's) now says
-- "Résultat du tirage au sort" for them, "Inscription au tirage au sort"
-- for a demande whose every item was entered (status deposee), and
-- "inscrite au tirage au sort" on an entered item's line.  Other mails
-- are unchanged to the byte.

create table draw_seed (
    activity_id     text collate "C" not null,
    seed            text        not null,
    created_at      timestamptz not null default now(),
    constraint draw_seed_pkey primary key (activity_id),
    constraint draw_seed_seed_check check (seed ~ '^[0-9a-f]{32,128}$')
);

create table draw_run (
    activity_id     text collate "C" not null,
    seed            text        not null,
    entries         integer     not null,
    families        integer     not null,
    started_at      timestamptz not null default now(),
    decided_at      timestamptz,
    constraint draw_run_pkey primary key (activity_id)
);

create table draw_entry (
    activity_id     text collate "C" not null,
    family_id       text collate "C" not null,
    child_id        text collate "C" not null,
    session_id      text collate "C" not null,
    at_ms           bigint      not null,
    idx             integer     not null,
    waitlist        boolean     not null,
    constraint draw_entry_pkey primary key
        (activity_id, family_id, child_id, session_id)
);

create or replace function demande_mail(p_ref text, out subject text,
    out body text)
language sql stable as $$
    select case
        when d.idem_key like 'dr.%'
        then format('Résultat du tirage au sort : demande N° %s',
                    d.request_id)
        when d.status = 'deposee'
        then format('Inscription au tirage au sort : demande N° %s',
                    d.request_id)
        when d.idem_key like 'wl.%' and d.status = 'traitee_positivement'
        then format('Une place s''est libérée : demande N° %s',
                    d.request_id)
        when d.idem_key like 'wl.%'
        then format('Liste d''attente close : demande N° %s', d.request_id)
        else format('Demande N° %s : %s', d.request_id, st.t) end,
        case
        when d.idem_key like 'dr.%'
        then format(E'Bonjour,\n\nRésultat du tirage au sort : les'
                    ' séances demandées pendant la période d''inscription'
                    ' ont été attribuées dans l''ordre du tirage (demande'
                    ' N° %s, %s).\n\n%s\n\nLe service enfance\n',
                    d.request_id, st.t, l.lines)
        when d.status = 'deposee'
        then format(E'Bonjour,\n\nVotre demande N° %s est inscrite au'
                    ' tirage au sort : les places seront attribuées à'
                    ' l''ouverture des réservations, vous recevrez le'
                    ' résultat par courriel.\n\n%s\n\nLe service'
                    ' enfance\n', d.request_id, l.lines)
        when d.idem_key like 'wl.%' and d.status = 'traitee_positivement'
        then format(E'Bonjour,\n\nUne place s''est libérée sur la liste'
                    ' d''attente : la séance ci-dessous est réservée'
                    ' (demande N° %s).\n\n%s\n\nLe service enfance\n',
                    d.request_id, l.lines)
        when d.idem_key like 'wl.%'
        then format(E'Bonjour,\n\nLe délai de réservation est passé : la'
                    ' liste d''attente de la séance ci-dessous est close,'
                    ' aucune place ne s''est libérée à temps (demande N°'
                    ' %s).\n\n%s\n\nLe service enfance\n',
                    d.request_id, l.lines)
        else format(E'Bonjour,\n\nVotre demande N° %s (réservation de'
                    ' séances) a été %s.\n\n%s\n\nLe service enfance\n',
                    d.request_id, st.t, l.lines) end
    from demande d
    cross join lateral (select case d.status
        when 'traitee_positivement' then 'traitée positivement'
        when 'partielle' then 'traitée partiellement'
        when 'traitee_negativement' then 'traitée négativement'
        else d.status end t) st
    cross join lateral (select string_agg(format('- %s : %s',
        coalesce((select c.first_name from child c
                  where c.id = t.i->>'child_id'), '')
        || ', ' || coalesce((select a.name || ', le '
                || to_char(s.date, 'DD/MM/YYYY') || ' (' || u.label || ')'
            from session s
            join activity a on a.id = s.activity_id
            join unit u on u.code = s.unit_code
            where s.id = t.i->>'session_id'), ', le  ()'),
        case when t.i->>'status' = 'confirmed' then 'confirmée ('
            || replace(to_char((t.i->>'price_cents')::bigint / 100.0,
                               'FM999999990.00'), '.', ',') || ' €)'
        when t.i->>'status' = 'entered' then 'inscrite au tirage au sort'
        when t.i->>'status' = 'waitlisted' then 'complet, sur la liste'
            || ' d''attente (' || (t.i->>'position') || 'ᵉ)'
        else 'refusée (' || case t.i->>'reason'
            when 'full' then 'complet'
            when 'conflict' then 'conflit avec une autre activité'
            when 'already_booked' then 'déjà réservée'
            when 'not_enrolled' then 'pas d''inscription validée'
            when 'age' then 'âge hors de la tranche'
            when 'documents_missing' then 'pièces manquantes au dossier'
            when 'unpaid_invoices' then 'factures impayées'
            when 'not_open_yet' then 'réservations pas encore ouvertes'
            when 'closed' then 'délai de réservation dépassé'
            when 'week_incomplete' then 'semaine complète obligatoire'
            when 'unknown_session' then 'séance inconnue'
            when 'replaced_unknown' then 'réservation à remplacer introuvable'
            else coalesce(t.i->>'reason', '') end || ')' end
        || case when jsonb_typeof(t.i->'released') = 'object' then
            coalesce(', à la place de ' || (select a.name || ', le '
                || to_char(s.date, 'DD/MM/YYYY') || ' (' || u.label || ')'
                from session s
                join activity a on a.id = s.activity_id
                join unit u on u.code = s.unit_code
                where s.id = t.i->'released'->>'session_id'), '')
            || case when (t.i->'released'->>'billed')::boolean
                then ', annulée après le délai : elle reste facturée'
                else ', annulée sans frais' end
        when t.i->>'replaces' is not null
            then ', votre réservation précédente est conservée'
        else '' end),
        E'\n' order by t.o) lines
        from jsonb_array_elements(case jsonb_typeof(d.items)
            when 'array' then d.items else '[]' end)
            with ordinality t(i, o)) l
    where d.request_id = p_ref and d.kind = 'book'
$$;
