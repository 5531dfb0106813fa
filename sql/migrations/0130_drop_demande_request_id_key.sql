-- 0130_drop_demande_request_id_key.sql -- one index entry less per
-- persisted demande (issue 20).
--
-- demande.request_id is "D-%06lld" of demande.number (the engine writes it
-- so: engine/src/book_step.c, demande.c, absence.c; the worker's COPY
-- too, worker/batch.c), so the primary key on number already makes it
-- unique, and its own unique index (demande_request_id_key) was one more
-- btree insertion per persisted row -- with demande_family_idx, 1.7-2.7
-- µs of PostgreSQL's CPU a row at batch_size 500-2000 (docs/benchmarks.md,
-- "COPY and identifiers in C", what is left).  Its one reader was
-- demande_mail(ref), which finds a demande's e-mail by its request_id when
-- the mailer claims the outbox row (and outbox_mail shows it).
--
-- demande_mail() is redefined from 0070's text (the latest), byte for byte
-- but for its last condition: the demande is found by the number the ref
-- spells (the primary key), and the request_id still has to be the ref
-- itself ("D-0000001" or "D-1" find no demande numbered 1 whose
-- request_id is "D-000001", as before).  A ref that is not "D-" and
-- digits finds nothing, as before.  Its e-mails are unchanged to the byte.

alter table demande drop constraint demande_request_id_key;

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
    where d.number = case when p_ref ~ '^D-[0-9]{1,18}$'
                          then substr(p_ref, 3)::bigint end
      and d.request_id = p_ref and d.kind = 'book'
$$;
