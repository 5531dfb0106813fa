/*
 * listes26.test.mjs -- issue 26, the daily lists of the back office in a
 * real browser (Debian's chromium driven by playwright-core) on a stack
 * of its own (it needs `make build`):
 *
 *   families book the centre's morning and meal; an agent records a
 *   child's allergy and a pick-up contact in the family's file, opens
 *   « Listes du jour » for that day, sees them, ticks attendance with the
 *   big buttons, prints the PDF, reads the week's meals; the régie
 *   downloads the month's CAF hours.
 *
 * Every page checked is axe clean (serious / critical), at desktop width
 * and 375 px.  Screenshots in tests/out/web/l26-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import * as H from "./helpers.mjs";

const PW = "pw-" + Math.random().toString(36).slice(2, 12);
const DAY = "2027-07-05";


const fam = (fid, kids) => ({
    id: fid, qf: 300,
    children: kids.map(([k, n]) => ({ id: fid + "-" + k, first_name: n,
                                      birth_date: "2018-04-04" })),
    enrolments: kids.map(([k]) => ({ child_id: fid + "-" + k,
                                     activity_id: "centre",
                                     from: "2027-01-01", to: "2027-12-31",
                                     status: "validee" })) });

const TOWN = {
    town: { name: "Listes", timezone: "Europe/Paris" },
    units: [{ code: "MATIN", label: "Matin", starts: "08:30",
              ends: "12:00" },
            { code: "REPAS", label: "Repas", starts: "12:00",
              ends: "13:30" }],
    activities: [{
        id: "centre", name: "Centre de loisirs",
        booking_opens_at: "2026-01-01T18:00:00+01:00",
        prices: [{ qf_max: null, cents: 700 }],
        sessions: ["MATIN", "REPAS"].map((u) => ({
            id: "c-" + u, date: DAY, unit: u, places: 10 })) }],
    families: [fam("f1", [["a", "Alice"]]), fam("f2", [["a", "Zoé"]])],
};

async function book(fid, child) {
    const tok = web.ctl("token", fid).trim();
    const r = await fetch(web.stack.base + "/api/bookings", {
        method: "POST",
        headers: { Authorization: "Bearer " + tok,
                   "Content-Type": "application/json",
                   "Idempotency-Key": "k" + Math.random().toString(36)
                                      .slice(2) },
        body: JSON.stringify({ items: ["c-MATIN", "c-REPAS"].map((s) =>
            ({ child_id: child, session_id: s })) }) });
    assert.equal(r.status, 200);
    const b = await r.json();
    assert.deepEqual(b.items.map((i) => i.status),
                     ["confirmed", "confirmed"]);
}

/* A person the family declares in its space (its entourage). */
async function declare(fid, person) {
    const tok = web.ctl("token", fid).trim();
    const r = await fetch(web.stack.base + "/api/entourage", {
        method: "POST",
        headers: { Authorization: "Bearer " + tok,
                   "Content-Type": "application/json" },
        body: JSON.stringify(person) });
    assert.equal(r.status, 201);
}

const web = H.ownStack("l26", TOWN, {
    staff: [["a.agent", "agent"],
            ["r.regie", "regie"]]
        .map(([login, role]) => ({ login, role, name: "Camille " + role,
                                   password: PW })),
    setup: async () => {
        await book("f1", "f1-a");
        await book("f2", "f2-a");
        await declare("f1", { first_name: "Paul", last_name: "Martin",
                              relation: "grand-père",
                              phone: "06 01 02 03 04",
                              can_pick_up: true, emergency: false });
    },
});
const { errors, shot, sql } = web;
const staffPage = (login, width) =>
    web.staffPage(login, PW, width, { acceptDownloads: true });

const t = web.ready ? test : test.skip;

t("an agent's list of the day, ticked and printed", async () => {
    const p = await staffPage("a.agent", 1200);
    /* the family's file: Alice's allergy; her grandfather, whom the
     * family declared in its space */
    await p.goto(web.stack.base + "/agent/#/dossier?id=f1");
    await p.waitForSelector("#section-enfants");
    await p.fill("input[aria-label='Allergies de Alice']", "arachide");
    await p.click("#section-enfants tbody button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('Allergies')");
    assert.match(await p.textContent("#section-entourage"),
                 /Peut venir chercher/);
    assert.equal(await p.inputValue("#section-entourage tbody .nom"),
                 "Martin");
    assert.equal(await p.inputValue("#section-entourage tbody .lien"),
                 "grand-père");
    assert.ok(await p.isChecked("#section-entourage tbody "
        + "input[aria-label$='peut venir chercher les enfants']"));

    /* the list; the persister may be a moment behind the bookings */
    for (let i = 0; i < 50; i++) {
        await p.goto(web.stack.base + "/agent/#/listes?date=" + DAY);
        await p.reload();
        await p.waitForSelector("#listes:not(:has(.chargement))");
        if (await p.$("[data-seance=c-REPAS] [data-enfant=f2-a]")) {
            break;
        }
        await p.waitForTimeout(200);
    }
    const matin = "[data-seance=c-MATIN] ";
    await p.waitForSelector(matin + "[data-enfant=f1-a]");
    assert.match(await p.textContent(matin + "[data-enfant=f1-a]"),
                 /Alice.*9 ans.*arachide.*Paul Martin/s);
    assert.match(await p.textContent("#repas"), /2.*Alice : arachide/s);
    await H.axe("listes", p);
    await p.click(matin + "button[aria-label='Présent : Alice']");
    await p.waitForSelector(matin + "button[aria-label='Présent : Alice']"
                            + "[aria-pressed=true]");
    await shot("listes-1200", p);

    const [dl] = await Promise.all([p.waitForEvent("download"),
                                    p.click("#liste-pdf")]);
    const pdf = fs.readFileSync(await dl.path());
    assert.equal(pdf.subarray(0, 4).toString(), "%PDF");
    const text = execFileSync("pdftotext", ["-layout", await dl.path(), "-"],
                              { encoding: "utf8" });
    assert.match(text, /Alice\s+9 ans\s+arachide\s+Paul Martin/);
    await p.close();

    const m = await staffPage("a.agent", 375);
    await m.goto(web.stack.base + "/agent/#/listes?date=" + DAY);
    await m.waitForSelector(matin + "[data-enfant=f1-a]");
    assert.equal(await m.getAttribute(matin + "button[aria-label='Présent "
                                      + ": Alice']", "aria-pressed"),
                 "true");
    assert.equal(await m.$("#caf-export"), null);
    await H.axe("listes 375", m);
    await shot("listes-375", m);
    await m.close();
    assert.deepEqual(errors, []);
});

t("the régie downloads the month's CAF hours", async () => {
    const p = await staffPage("r.regie", 1200);
    await p.goto(web.stack.base + "/agent/#/listes?date=" + DAY);
    await p.waitForSelector("#caf-export");
    await p.fill("#caf-mois", "2027-07");
    const [dl] = await Promise.all([p.waitForEvent("download"),
                                    p.click("#caf-export")]);
    const csv = fs.readFileSync(await dl.path(), "utf8");
    assert.match(csv, /^famille;enfant;prenom;date_naissance;activite;/);
    assert.match(csv, /"f1";"f1-a";"Alice";2018-04-04;"Centre de loisirs";3,50;5,00;1\r\n/);
    await p.close();
    assert.deepEqual(errors, []);
});
