/*
 * caisse26.test.mjs -- issue 26, the régie's counter in the back office,
 * in a real browser (Debian's chromium driven by playwright-core) on a
 * stack of its own (it needs `make build`):
 *
 *   the régie finds a family's unpaid invoices, ticks two, records a
 *   cheque for their total, sees it among the month's counter payments
 *   and downloads the month's accounting CSV; it makes an avoir on an
 *   unpaid invoice (less to pay; the family sees it in « Mes factures »
 *   and pays the rest) and on a paid one (owed back), refunds
 *   it by cheque (more than owed refused), and finds both in the CSV;
 *   an agent has no « Caisse ».
 *
 * The invoices are rows written with psql, as the integration tests do.
 * Every page checked is axe clean (serious / critical), at desktop width
 * and 375 px.  Screenshots in tests/out/web/c26-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import * as H from "./helpers.mjs";

const PW = "pw-" + Math.random().toString(36).slice(2, 12);

const invId = (n) => sql("select id from invoice where number = " + n);

const TOWN = {
    town: { name: "Caisse", timezone: "Europe/Paris" },
    units: [{ code: "MATIN", label: "Matin", starts: "08:30",
              ends: "12:00" }],
    activities: [],
    families: [{ id: "f1", qf: 400, children: [] },
               { id: "f2", qf: 900, children: [] }],
};

const web = H.ownStack("c26", TOWN, {
    staff: [["r.regie", "regie"],
            ["a.agent", "agent"],
            ["c.chef", "admin"]]
        .map(([login, role]) => ({ login, role, name: "Camille " + role,
                                   password: PW })),
    setup: async () => {
        sql("insert into invoice (number, family_id, month, total_cents,"
            + " issued_at, due_date) values"
            + " (1, 'f1', '2026-10-01', 4200, now(), '2026-11-15'),"
            + " (2, 'f1', '2026-11-01', 1350, now(), '2026-12-15'),"
            + " (3, 'f2', '2026-11-01', 700, now(), '2026-12-15')");
    },
});
const { errors, shot, sql } = web;
const staffPage = (login, width) =>
    web.staffPage(login, PW, width, { acceptDownloads: true });

const t = web.ready ? test : test.skip;

t("the régie records a cheque and exports the month", async () => {
    const p = await staffPage("r.regie", 1200);
    await p.click("nav a[href='#/caisse']");
    await p.waitForSelector("#caisse-famille");
    await p.fill("#caisse-famille", "f1");
    await p.click("form[role=search] button[type=submit]");
    await p.waitForSelector("#caisse-paiement");
    await p.waitForSelector("#caisse-paiements p:not(.chargement)");
    await H.axe("caisse factures", p);
    /* the first invoice is past due: its letter */
    const [dl0] = await Promise.all([p.waitForEvent("download"),
                                     p.click("#caisse-relance")]);
    assert.equal(dl0.suggestedFilename(), "relance-f1.pdf");
    const letter = execFileSync("pdftotext", ["-layout", await dl0.path(),
                                              "-"], { encoding: "utf8" });
    assert.match(letter, /n° 1\s+10\/2026\s+15\/11\/2026\s+42,00/);
    await p.check("input[aria-label='Payer la facture n° 1']");
    await p.check("input[aria-label='Payer la facture n° 2']");
    assert.match(await p.textContent("#caisse-total"), /55,50/);
    await p.selectOption("#caisse-mode", "cheque");
    await p.fill("#caisse-reference", "chèque 1234567 Banque Postale");
    await p.click("#caisse-paiement button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('enregistré')");
    assert.match(await p.textContent("main [role=status]"),
                 /Paiement de 55,50\s€ enregistré \(Chèque, factures n° 1, 2\)/);
    await p.waitForSelector("#caisse :text('aucune facture à payer')");
    await p.waitForSelector("#caisse-paiements table");
    assert.match(await p.textContent("#caisse-paiements"),
                 /f1.*Chèque.*55,50.*1, 2.*chèque 1234567/s);
    assert.equal(sql("select string_agg(paid_by, ',' order by number)"
                     + " from invoice where family_id = 'f1'"),
                 "counter,counter");
    await H.axe("caisse payée", p);
    await shot("caisse-1200", p);

    const [dl] = await Promise.all([p.waitForEvent("download"),
                                    p.click("#export-compta")]);
    const csv = fs.readFileSync(await dl.path(), "utf8");
    assert.match(csv, /^type;date;facture;famille;mode;montant;reference;agent;piece\r\n/);
    assert.match(csv, /"encaissement";\d{4}-\d\d-\d\d;1;"f1";"cheque";42,00;"chèque 1234567 Banque Postale";"r\.regie"/);
    /* one régie's export */
    await p.selectOption("#caisse-regie", "principale");
    const [d2] = await Promise.all([p.waitForEvent("download"),
                                    p.click("#export-compta")]);
    assert.match(d2.suggestedFilename(),
                 /^guichet-comptabilite-principale-\d{4}-\d\d\.csv$/);
    assert.equal(await p.$("#regie-creer"), null);
    await p.close();

    const m = await staffPage("r.regie", 375);
    await m.goto(web.stack.base + "/agent/#/caisse?famille=f2");
    await m.waitForSelector("#caisse-paiement");
    await m.waitForSelector("#caisse-paiements table");
    await H.axe("caisse 375", m);
    await shot("caisse-375", m);
    await m.close();
    assert.deepEqual(errors, []);
});

t("the régie makes avoirs and refunds what it owes", async () => {
    const p = await staffPage("r.regie", 1200);
    /* f2's invoice n° 3 (7,00) not paid: an avoir lowers what is due */
    await p.goto(web.stack.base + "/agent/#/caisse?famille=f2");
    await p.waitForSelector("#avoir-form");
    await p.waitForSelector("#caisse-avoirs :text('Aucun avoir')");
    await p.selectOption("#avoir-facture", invId(3));
    await p.fill("#avoir-montant", "2,50");
    await p.fill("#avoir-motif", "Séance annulée");
    await p.click("#avoir-form button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('Avoir AV-1')");
    assert.match(await p.textContent("main [role=status]"),
                 /Avoir AV-1 de 2,50\s€ enregistré \(facture n° 3\)/);
    await p.waitForSelector("#caisse-avoirs table");
    assert.match(await p.textContent("#caisse-paiement"),
                 /n° 3.*4,50\s€ \(avoirs : 2,50\s€\)/s);
    await p.check("input[aria-label='Payer la facture n° 3']");
    assert.match(await p.textContent("#caisse-total"), /4,50/);
    /* a refund of more than owed is refused, with what is owed */
    await p.selectOption("#remb-facture", invId(3));
    await p.fill("#remb-montant", "1");
    await p.click("#remboursement-form button[type=submit]");
    await p.waitForSelector("#remboursement-form [role=alert]");
    assert.match(await p.textContent("#remboursement-form [role=alert]"),
                 /0,00\s€/);
    await H.axe("caisse avoir", p);

    /* the family sees the avoir and pays what is left */
    const tok = web.ctl("token", "f2").trim();
    const fctx = await web.browser.newContext({ locale: "fr-FR" });
    await fctx.addCookies([{ name: "guichet_session", value: tok,
                             url: web.stack.base }]);
    const fam = await fctx.newPage();
    fam.on("pageerror", (e) => errors.push(e.message));
    await fam.goto(web.stack.base + "/#/factures");
    await fam.waitForSelector("h1:has-text('Mes factures')");
    await fam.waitForSelector("text=avoir AV-1");
    assert.match(await fam.textContent("main table"),
                 /N° 0*3.*7,00\s€.*avoir AV-1 : −2,50\s€ \(Séance annulée\).*reste à payer : 4,50\s€/s);
    await fam.check("#fac-" + invId(3));
    assert.match(await fam.textContent("#somme-cochee"), /4,50/);
    await H.axe("factures avec avoir", fam);
    await fctx.close();

    /* f1's invoice n° 1 was paid by cheque: an avoir is owed back, then
       refunded by cheque */
    await p.goto(web.stack.base + "/agent/#/caisse?famille=f1");
    await p.waitForSelector("#avoir-form");
    await p.selectOption("#avoir-facture", invId(1));
    await p.fill("#avoir-montant", "5");
    await p.fill("#avoir-motif", "Absence justifiée");
    await p.click("#avoir-form button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('Avoir AV-2')");
    await p.waitForSelector("#caisse-avoirs :text('(à rembourser)')");
    await p.selectOption("#remb-facture", invId(1));
    await p.selectOption("#remb-mode", "cheque");
    await p.fill("#remb-montant", "5,00");
    await p.fill("#remb-reference", "chèque du Trésor 77");
    await p.click("#remboursement-form button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('Remboursement')");
    assert.match(await p.textContent("main [role=status]"),
                 /Remboursement RB-1 de 5,00\s€ enregistré \(Chèque, facture n° 1\)/);
    await p.waitForSelector("#caisse-avoirs :text('RB-1')");
    assert.match(await p.textContent("#caisse-avoirs"),
                 /RB-1.*n° 1.*5,00.*Remboursement Chèque – chèque du Trésor 77.*r\.regie/s);
    assert.equal(sql("select string_agg(number || ':' || amount_cents, ','"
                     + " order by number) from credit_note"), "1:250,2:500");
    await H.axe("caisse remboursement", p);
    await shot("avoirs-1200", p);

    const [dl] = await Promise.all([p.waitForEvent("download"),
                                    p.click("#export-compta")]);
    const csv = fs.readFileSync(await dl.path(), "utf8");
    assert.match(csv, /"avoir";\d{4}-\d\d-\d\d;3;"f2";"";2,50;"Séance annulée";"r\.regie";"AV-1"/);
    assert.match(csv, /"remboursement";\d{4}-\d\d-\d\d;1;"f1";"cheque";5,00;"chèque du Trésor 77";"r\.regie";"RB-1"/);
    await p.close();

    const m = await staffPage("r.regie", 375);
    await m.goto(web.stack.base + "/agent/#/caisse?famille=f1");
    await m.waitForSelector("#caisse-avoirs table");
    await H.axe("avoirs 375", m);
    await shot("avoirs-375", m);
    await m.close();
    assert.deepEqual(errors, []);
});

t("an admin creates a régie", async () => {
    const p = await staffPage("c.chef", 375);
    await p.goto(web.stack.base + "/agent/#/caisse");
    await p.waitForSelector("#regie-creer");
    await p.fill("#regie-code", "cantine");
    await p.fill("#regie-nom", "Régie de la restauration");
    await p.click("#regie-creer button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('Régie « Régie de "
                            + "la restauration » créée.')");
    await p.waitForSelector("#caisse-regie option[value=cantine]",
                            { state: "attached" });
    await H.axe("régies 375", p);
    await p.close();
    assert.deepEqual(errors, []);
});

t("an agent has no counter for money", async () => {
    const p = await staffPage("a.agent", 1200);
    assert.equal(await p.isVisible("nav a[href='#/caisse']"), false);
    await p.goto(web.stack.base + "/agent/#/caisse?famille=f2");
    await p.waitForSelector("#caisse-regie");
    assert.equal(await p.$("#caisse-paiement"), null);
    await p.close();
    assert.deepEqual(errors, []);
});
