-- 0030_add_town_id.sql -- towns as tenants (issue 21): the town a
-- schema holds.
--
-- One database serves many towns.  Each town's rows live in a schema of
-- their own, "town_<id>" ('-' written '_'), listed in public.platform_town
-- and made by these same migrations (guichetctl migrate applies every file
-- to every town's schema, with the search_path naming it): every row
-- carries its town by where it lives, and every id and number is the
-- town's own -- two towns may both have a family "f-martin", a session
-- "alsh-2027-07-07-MATIN", a demande 1 and an invoice 1 (each régie
-- numbers its invoices from 1 without gaps).  docs/architecture.md,
-- "Towns in PostgreSQL", says why schemas rather than a town column.
--
-- A database of the layout before towns had its tables in public: the
-- runner moved them (rows, sequences, indexes, triggers, functions) into
-- the schema of the configured town (the town whose file was loaded,
-- `main` by default) before applying this file there.
--
-- Here the town row names its town id too (town.id of the town file), so
-- that the schema says whose it is: the existing row gets the schema's
-- town, and load-town writes the id it loads.

alter table town add column town_id text not null
    default replace(substr(current_schema(), 6), '_', '-');

alter table town alter column town_id drop default;

alter table town add constraint town_town_id check
    (town_id ~ '^[a-z0-9-]{1,40}$');
