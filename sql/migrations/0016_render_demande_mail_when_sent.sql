-- 0016_render_demande_mail_when_sent.sql -- a demande's e-mail is written
-- when it is sent, not when it is queued (issue 20).
--
-- guichet-worker queued, with every persisted demande (worker/batch.c),
-- an outbox row holding the e-mail's subject and text: one line per cell
-- ("- Thaïs : Thaïs, ALSH, le 07/07/2031 (Matin) : confirmée (9,00 €)"),
-- from the child's first name, the session's activity, date and unit.
-- Rendering it took an eighth of PostgreSQL's CPU per persisted booking
-- during the rush (docs/benchmarks.md, *The worker alone*), for e-mails
-- most of which go out later, or never (a family without an address).
--
-- Now the persister queues the row of kind 'demande' with neither subject
-- nor body, and demande_mail(ref) writes both from the demande row (its
-- status and items, the copy of the answer) when the mailer claims it
-- (worker/mail.c): the same text to the byte, with the names as they are
-- at sending time.  outbox_mail is the outbox as the families get it:
-- what tests and readers look at.  Rows queued before this migration keep
-- their text; every other kind of row still carries its own.

alter table outbox alter column subject drop not null;
alter table outbox alter column body drop not null;
alter table outbox add constraint outbox_text check
    (kind = 'demande' or (subject is not null and body is not null));

create function demande_mail(p_ref text, out subject text, out body text)
language sql stable as $$
    select format('Demande N° %s : %s', d.request_id, st.t),
        format(E'Bonjour,\n\nVotre demande N° %s (réservation de séances)'
               ' a été %s.\n\n%s\n\nLe service enfance\n',
               d.request_id, st.t, l.lines)
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
            else coalesce(t.i->>'reason', '') end || ')' end),
        E'\n' order by t.o) lines
        from jsonb_array_elements(case jsonb_typeof(d.items)
            when 'array' then d.items else '[]' end)
            with ordinality t(i, o)) l
    where d.request_id = p_ref and d.kind = 'book'
$$;

create view outbox_mail as
    select o.id, o.family_id, o.kind, o.ref,
        coalesce(o.subject, m.subject) subject,
        coalesce(o.body, m.body) body,
        o.created_at, o.next_attempt_at, o.sent_at, o.attempts, o.last_error
    from outbox o
    left join lateral demande_mail(o.ref) m
        on o.kind = 'demande' and o.body is null;
