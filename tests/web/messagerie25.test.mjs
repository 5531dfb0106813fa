/*
 * messagerie25.test.mjs -- the messagerie's services, themes and
 * attachments, and absences examined by the town (issue 25), in a real
 * browser on a stack of its own:
 *
 *   messagerie: the family (375 px) writes to a service on a theme with a
 *   PDF attached (a fake PDF refused first, its words said, nothing
 *   sent); the agent (1200 px) filters by service and theme, answers with
 *   a PNG, and opens a thread to the family; the family reads both, the
 *   attachment as a link.
 *   absences: the family justifies an absence with a medical certificate
 *   (« justificatif en cours d'examen ») and another for a strike
 *   (without proof); the agent's « Absences à examiner » refuses the
 *   first with a reason and accepts the second; the family's bookings say
 *   so, and the refusal is in its messagerie.
 *   settings: an admin's « Messagerie et absences » takes a service off
 *   the list, adds a theme and a reason without proof; the family's forms
 *   follow.
 *
 * axe-clean at each step.  Skipped when build/ has no guichet-office.
 * Screenshots in tests/out/web/messagerie25-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { axe, login, ownStack } from "./helpers.mjs";

const PASSWORD = "msg-" + Math.random().toString(36).slice(2, 10);
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);

const iso = (d) => d.toISOString().slice(0, 10);
const start = new Date(Date.now() + 30 * 86400000);

const TOWN = {
    town: { name: "Ambérieu-en-Bugey", timezone: "Europe/Paris" },
    units: [{ code: "MATIN", label: "Matin", starts: "08:30",
              ends: "12:00" }],
    activities: [{
        id: "centre", name: "Centre de loisirs", age_min: 3, age_max: 12,
        deadline: {}, prices: [{ qf_max: null, cents: 700 }],
        calendar: { from: iso(start),
                    to: iso(new Date(start.getTime() + 20 * 86400000)),
                    weekdays: [1, 2, 3, 4, 5], units: ["MATIN"],
                    places: 10 } }],
    families: [{
        id: "f-msg", login: "lefebvre", password: PASSWORD, qf: 500,
        children: [{ id: "c-lea", first_name: "Léa",
                     birth_date: (start.getFullYear() - 7) + "-05-05" }],
        enrolments: [{ child_id: "c-lea", activity_id: "centre",
                       from: iso(new Date()),
                       to: iso(new Date(Date.now() + 300 * 86400000)),
                       status: "validee" }] }],
};

const web = ownStack("messagerie25", TOWN, {
    staff: [{ login: "m.agent", role: "agent", name: "Maud Agent",
              password: STAFF_PASSWORD },
            { login: "m.admin", role: "admin", name: "Marc Admin",
              password: STAFF_PASSWORD }] });
const { errors, newPage, shot } = web;

const t = web.ready ? test : test.skip;

const PDF = { name: "pai.pdf", mimeType: "application/pdf",
              buffer: Buffer.from("%PDF-1.4\n1 0 obj << >> endobj\n"
                                  + "trailer << >>\n%%EOF\n") };
const PNG = { name: "menu.png", mimeType: "image/png",
              buffer: Buffer.from(
                  "89504e470d0a1a0a0000000d4948445200000001000000010802"
                  + "000000907753de0000000c49444154789c63f80f0000010100"
                  + "0518d84e0000000049454e44ae426082", "hex") };

t("messagerie: services, themes, attachments, a thread from the town",
  async () => {
    const m = await newPage(375);
    await login(m, web.stack.base, "lefebvre", PASSWORD);
    await m.goto(web.stack.base + "/#/messagerie");
    await m.waitForSelector("#msg-service option[value=scolaire]",
                            { state: "attached" });
    await m.selectOption("#msg-service", "scolaire");
    await m.selectOption("#msg-theme", "allergie");
    await m.fill("#msg-sujet", "PAI de Léa");
    await m.fill("#msg-corps", "Bonjour, voici le PAI de Léa.");
    /* a file that only says it is a PDF: refused, its words said */
    await m.setInputFiles("#msg-pj", { name: "faux.pdf",
        mimeType: "application/pdf", buffer: Buffer.from("<html>") });
    await m.click("form[aria-labelledby=t-nouveau] button[type=submit]");
    await m.waitForSelector("form[aria-labelledby=t-nouveau] [role=alert]");
    assert.match(await m.textContent(
        "form[aria-labelledby=t-nouveau] [role=alert]"),
        /faux\.pdf : Ce fichier n'est pas un vrai PDF/);
    assert.equal(web.sql("select count(*) from message_thread"), "0");
    await axe("nouveau message refusé 375", m);
    await m.setInputFiles("#msg-pj", PDF);
    await m.click("form[aria-labelledby=t-nouveau] button[type=submit]");
    await m.waitForSelector("text=Message envoyé.");
    const li = "#liste-fils li:has-text('PAI de Léa')";
    await m.waitForSelector(li);
    assert.match(await m.textContent(li),
                 /Restauration scolaire · Allergie, PAI, régime/);
    await axe("messagerie 375", m);
    await shot("famille-375", m);

    const ag = await web.staffPage("m.agent", STAFF_PASSWORD, 1200);
    await ag.click("#nav a[href='#/messagerie']");
    await ag.waitForSelector("#ag-filtre-service option[value=scolaire]",
                             { state: "attached" });
    await ag.selectOption("#ag-filtre-service", "regie");
    await ag.click("#form-filtres button[type=submit]");
    await ag.waitForSelector("#aucun-fil");
    await ag.selectOption("#ag-filtre-service", "scolaire");
    await ag.selectOption("#ag-filtre-theme", "allergie");
    await ag.click("#form-filtres button[type=submit]");
    const row = "tr:has-text('PAI de Léa')";
    await ag.waitForSelector(row);
    assert.match(await ag.textContent(row), /Allergie, PAI, régime/);
    await axe("agent messagerie", ag);
    await ag.click(row + " a");
    await ag.waitForSelector("button:has-text('Ouvrir pai.pdf')");
    await ag.fill("#ag-reponse", "Bien reçu, voici le menu adapté.");
    await ag.setInputFiles("#ag-reponse-pj", PNG);
    await axe("agent fil", ag);
    await ag.click("form:has(#ag-reponse) button[type=submit]");
    await ag.waitForSelector("text=Réponse envoyée.");
    await ag.waitForSelector("button:has-text('Ouvrir menu.png')");

    /* the town opens a thread to the family */
    await ag.click("a:has-text('Toutes les conversations')");
    await ag.waitForSelector("#form-nouveau-fil");
    await ag.fill("#ag-nouveau-famille", "f-msg");
    await ag.selectOption("#ag-nouveau-service", "regie");
    await ag.selectOption("#ag-nouveau-theme", "facture");
    await ag.fill("#ag-nouveau-objet", "Votre facture de juin");
    await ag.fill("#ag-nouveau-corps", "Une erreur a été corrigée.");
    await ag.click("#form-nouveau-fil button[type=submit]");
    await ag.waitForSelector("text=Message envoyé à la famille f-msg.");
    await axe("agent messagerie après", ag);
    await shot("agent", ag);
    await ag.context().close();

    await m.goto(web.stack.base + "/#/messagerie");
    await m.reload();
    const th = "#liste-fils li:has-text('Votre facture de juin')";
    await m.waitForSelector(th);
    assert.match(await m.textContent(th), /Régie.* · Facture.*1 non lu/);
    await m.click(li + " a");
    await m.waitForSelector("#fil-messages a:has-text('menu.png')");
    assert.equal(await m.getAttribute("#fil-messages a:has-text('pai.pdf')",
                                      "download"), "pai.pdf");
    await axe("fil 375", m);
    await shot("fil-375", m);
    await m.context().close();
    assert.deepEqual(errors, []);
});

async function book(p, day) {
    return p.evaluate(async (d) => {
        const r = await fetch("/api/bookings", {
            method: "POST", credentials: "same-origin",
            headers: { "Content-Type": "application/json",
                       "Idempotency-Key": "k" + Math.random().toString(36)
                                                .slice(2) },
            body: JSON.stringify({ items: [{ child_id: "c-lea",
                session_id: "centre-" + d.replaceAll("-", "") + "-MATIN" }]
            }) });
        const j = await r.json();
        return j.items[0].booking_id;
    }, day);
}

t("absences: examined by the town, refused and accepted", async () => {
    const m = await newPage(375);
    await login(m, web.stack.base, "lefebvre", PASSWORD);
    const sessions = await m.evaluate(async () =>
        (await (await fetch("/api/activities/centre/sessions")).json()));
    const days = (sessions.sessions || sessions).map((s) => s.date);
    const a = await book(m, days[0]);
    const b = await book(m, days[1]);
    assert.ok(a && b, "two bookings");

    const justify = async (bid, motif, file) => {
        const row = "tr[data-booking=\"" + bid + "\"]";
        await m.goto(web.stack.base + "/#/reservations");
        await m.waitForSelector(row);
        await m.click(row + " button:has-text('Justifier une absence')");
        await m.waitForSelector("dialog[open] #abs-motif option[value=greve]",
                                { state: "attached" });
        await m.selectOption("#abs-motif", motif);
        if (file) {
            await m.setInputFiles("#abs-doc", file);
        }
        await axe("justifier " + motif, m);
        await m.click("dialog[open] button[type=submit]");
        await m.waitForSelector("main >> text=en cours d'examen");
        return row;
    };
    /* a medical certificate is required: said before anything is sent */
    const rowA = "tr[data-booking=\"" + a + "\"]";
    await m.goto(web.stack.base + "/#/reservations");
    await m.waitForSelector(rowA);
    await m.click(rowA + " button:has-text('Justifier une absence')");
    await m.waitForSelector("dialog[open] #abs-motif");
    await m.selectOption("#abs-motif", "medical");
    assert.equal(await m.textContent("label[for=abs-doc]"),
                 "Certificat médical");
    assert.ok(await m.$("#abs-doc:invalid"), "the certificate is required");
    await m.selectOption("#abs-motif", "greve");
    assert.equal(await m.textContent("label[for=abs-doc]"),
                 "Justificatif (facultatif)");
    assert.equal(await m.$("#abs-doc:invalid"), null);
    await m.keyboard.press("Escape");

    await justify(a, "medical", { ...PDF, name: "certificat.pdf" });
    await m.waitForSelector(rowA + " .absence:has-text('en cours d')");
    await shot("absence-375", m);
    await justify(b, "greve", null);

    const ag = await web.staffPage("m.agent", STAFF_PASSWORD, 1200);
    await ag.click("#nav a[href='#/absences']");
    const secA = "section[data-absence=\"" + a + "\"]";
    const secB = "section[data-absence=\"" + b + "\"]";
    await ag.waitForSelector(secA);
    assert.match(await ag.textContent(secA), /Léa.*Maladie/);
    assert.match(await ag.textContent(secA), /certificat\.pdf/);
    await axe("agent absences", ag);
    await ag.click(secA + " button:has-text('Refuser')");
    await ag.waitForSelector("dialog[open] textarea");
    await ag.fill("dialog[open] textarea", "Certificat illisible.");
    await axe("agent refus", ag);
    await ag.click("dialog[open] button[type=submit]");
    await ag.waitForSelector("text=Justificatif refusé");
    await ag.click(secB + " button:has-text('Accepter')");
    await ag.waitForSelector("text=Justificatif accepté");
    await ag.waitForSelector("#aucune-absence");
    await shot("agent-absences", ag);
    await ag.context().close();

    await m.goto(web.stack.base + "/#/reservations");
    await m.reload();
    await m.waitForSelector(rowA + " .absence");
    assert.match(await m.textContent(rowA + " .absence"),
                 /Justificatif refusé : Certificat illisible\./);
    assert.match(await m.textContent("tr[data-booking=\"" + b
                                     + "\"] .absence"),
                 /Justificatif accepté/);
    await axe("réservations après examen 375", m);
    await m.goto(web.stack.base + "/#/messagerie");
    await m.waitForSelector("#liste-fils li:has-text('Justificatif "
                            + "d\\'absence refusé')");
    await m.context().close();
    assert.equal(web.sql("select string_agg(status, ',' order by status)"
                         + " from booking_justification"),
                 "acceptee,refusee");
    assert.deepEqual(errors, []);
});

t("settings: the town's services, themes and reasons", async () => {
    const ad = await web.staffPage("m.admin", STAFF_PASSWORD, 1200);
    await ad.click("#nav a[href='#/reglages']");
    await ad.waitForSelector("#form-services");
    await axe("réglages", ad);
    await ad.uncheck("#form-services tr:has(input.code[value=regie]) "
                     + "input.actif");
    const themes = "#form-services tr:has(input.code[value=scolaire]) "
                   + "textarea";
    await ad.fill(themes, (await ad.inputValue(themes))
                          + "\nbio : Repas bio");
    await ad.click("#form-services button[type=submit]");
    await ad.waitForSelector("text=Services de la messagerie enregistrés.");
    await ad.uncheck("#form-motifs tr:has(input.code[value=greve]) "
                     + "input.actif");
    await ad.click("#form-motifs button:has-text('Ajouter un motif')");
    const last = "#form-motifs tbody tr:last-child";
    await ad.fill(last + " input.libelle", "Rendez-vous médical");
    await ad.uncheck(last + " input.preuve");
    await ad.click("#form-motifs button[type=submit]");
    await ad.waitForSelector("text=Motifs d'absence enregistrés.");
    assert.equal(await ad.isChecked("#form-services tr:has(input.code"
                                    + "[value=regie]) input.actif"), false);
    await axe("réglages enregistrés", ad);
    await shot("reglages", ad);
    await ad.context().close();

    const m = await newPage(375);
    await login(m, web.stack.base, "lefebvre", PASSWORD);
    await m.goto(web.stack.base + "/#/messagerie");
    await m.waitForSelector("#msg-service option[value=scolaire]",
                            { state: "attached" });
    assert.equal(await m.$("#msg-service option[value=regie]"), null);
    await m.selectOption("#msg-service", "scolaire");
    await m.selectOption("#msg-theme", "bio");
    const sessions = await m.evaluate(async (q) =>
        (await (await fetch("/api/activities/centre/sessions?" + q)).json()),
        "from=" + iso(start) + "&to="
        + iso(new Date(start.getTime() + 20 * 86400000)));
    const c = await book(m, (sessions.sessions || sessions)[2].date);
    const row = "tr[data-booking=\"" + c + "\"]";
    await m.goto(web.stack.base + "/#/reservations");
    await m.waitForSelector(row);
    await m.click(row + " button:has-text('Justifier')");
    await m.waitForSelector("#abs-motif option[value=rendez-vous-medical]",
                            { state: "attached" });
    assert.equal(await m.$("#abs-motif option[value=greve]"), null);
    await m.selectOption("#abs-motif", "rendez-vous-medical");
    assert.equal(await m.$("#abs-doc:invalid"), null);
    await axe("motifs 375", m);
    await m.context().close();
    assert.deepEqual(errors, []);
});
