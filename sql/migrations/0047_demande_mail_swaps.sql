-- 0047_demande_mail_swaps.sql -- a demande's e-mail says what a swap
-- released (issue 24).
--
-- A swap is an item of a booking demande that replaces one of the
-- family's bookings (docs/api.md): confirmed, its item names the booking
-- released ("released": {"booking_id", "session_id", "billed"}) and no
-- cancellation e-mail is queued for it (worker/batch.c); refused, the old
-- booking is kept ("replaces", "kept").  demande_mail() (0016, with
-- 0035's waiting lists) now says so on the cell's line: "..., à la
-- place de Danse, le 07/07/2027 (Après-midi), annulée sans frais" (or
-- "... : elle reste facturée"), or
-- "..., votre réservation précédente est conservée"; and the refusal
-- replaced_unknown in words.  Other lines are unchanged to the byte.

create or replace function demande_mail(p_ref text, out subject text,
    out body text)
language sql stable as $$
    select case
        when d.idem_key like 'wl.%' and d.status = 'traitee_positivement'
        then format('Une place s''est libérée : demande N° %s',
                    d.request_id)
        when d.idem_key like 'wl.%'
        then format('Liste d''attente close : demande N° %s', d.request_id)
        else format('Demande N° %s : %s', d.request_id, st.t) end,
        case
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
