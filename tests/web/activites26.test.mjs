/*
 * activites26.test.mjs -- issue 26, activities and sessions in the back
 * office, in a real browser (Debian's chromium driven by playwright-core)
 * on a stack of its own (it needs `make build`):
 *
 *   the régie creates the Wednesday club (prices by QF, opening), makes
 *   its Wednesdays of September and October from a calendar without the
 *   autumn holidays and a closed day, sees their live counters once the
 *   worker published them, and changes one session's places: both
 *   counters follow; an agent reads the same pages and cannot change
 *   anything.
 *
 * Every page checked is axe clean (serious / critical), at desktop width
 * and 375 px.  Screenshots in tests/out/web/a26-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as H from "./helpers.mjs";

const PW = "pw-" + Math.random().toString(36).slice(2, 12);


const TOWN = {
    town: { name: "Activités", timezone: "Europe/Paris" },
    units: [{ code: "MATIN", label: "Matin", starts: "08:30",
              ends: "12:00" },
            { code: "APM", label: "Après-midi", starts: "13:30",
              ends: "17:30" }],
    activities: [{
        id: "centre", name: "Centre de loisirs", age_min: 3, age_max: 12,
        prices: [{ qf_max: null, cents: 700 }],
        sessions: [{ id: "centre-1", date: "2027-09-06", unit: "MATIN",
                     places: 10 }] }],
    families: [{ id: "f1", qf: 400,
                 children: [{ id: "f1-a", first_name: "Alice",
                              birth_date: "2018-04-04" }],
                 enrolments: [{ child_id: "f1-a", activity_id: "centre",
                                from: "2027-01-01", to: "2027-12-31",
                                status: "validee" }] }],
};

const web = H.ownStack("a26", TOWN, {
    staff: [["r.regie", "regie"],
            ["a.agent", "agent"],
            ["c.chef", "admin"]]
        .map(([login, role]) => ({ login, role, name: "Camille " + role,
                                   password: PW }))
});
const { errors, shot, sql } = web;
const staffPage = (login, width) => web.staffPage(login, PW, width);

const t = web.ready ? test : test.skip;

const cells = (p, sel) => p.$$eval("#seances tbody tr " + sel,
                                   (tds) => tds.map((x) => x.textContent));

t("the régie creates the Wednesday club, its sessions and their places",
  async () => {
    const p = await staffPage("r.regie", 1200);
    await p.click("nav a[href='#/activites']");
    await p.waitForSelector("#activites [data-activite=centre]");
    await H.axe("activités régie", p);
    await shot("liste-1200", p);

    /* the club, as the town's manual describes it */
    await p.fill("#ac-id", "mercredi");
    await p.fill("#ac-nom", "Club du mercredi");
    await p.fill("#ac-site", "École Jaurès");
    await p.fill("#ac-ouverture-jour", "2026-06-01");
    await p.fill("#ac-ouverture-heure", "18:00");
    await p.fill("#ac-part", "50");
    await p.click("#ac-creer button[type=submit]");
    await p.waitForSelector("h1:has-text('Club du mercredi')");
    assert.match(await p.textContent("main"),
                 /Activité « Club du mercredi » créée\./);
    assert.match(await p.textContent("#reglages"),
                 /QF ≤ 500 : 3,00\s€ ; au-delà : 9,00\s€/);
    await H.axe("activité créée", p);

    /* its Wednesdays: not in the autumn holidays, not on 15 September */
    await p.fill("#gen-du", "2027-09-01");
    await p.fill("#gen-au", "2027-10-31");
    await p.fill("#gen-places", "4");
    await p.fill("#gen-fermetures", "2027-10-16 2027-11-01\n2027-09-15");
    await p.click("#gen button[type=submit]");
    await p.waitForSelector("#seances");
    assert.match(await p.textContent("main"), /6 séance\(s\) créée\(s\)\./);
    assert.deepEqual(await cells(p, "th"),
                     ["01/09/2027 Matin", "08/09/2027 Matin",
                      "22/09/2027 Matin", "29/09/2027 Matin",
                      "06/10/2027 Matin", "13/10/2027 Matin"]);

    /* the worker publishes them: 2 online, 2 at the counter */
    for (let i = 0; i < 100; i++) {
        const left = await cells(p, ".en-ligne-restant");
        const counter = await cells(p, ".guichet-restant");
        if (left[0] === "2" && counter[0] === "2") {
            break;
        }
        await p.waitForTimeout(200);
        await p.reload();
        await p.waitForSelector("#seances");
    }
    assert.equal((await cells(p, ".en-ligne-restant"))[0], "2");
    assert.equal((await cells(p, ".guichet-restant"))[0], "2");
    await H.axe("séances publiées", p);
    await shot("seances-1200", p);

    /* 10 places on the first Wednesday: both counters follow at once */
    const first = "#seances tbody tr:first-child";
    await p.fill(first + " input.places", "10");
    await p.click(first + " button[type=submit]");
    await p.waitForFunction(() => document.querySelector(
        "#seances tbody tr:first-child .en-ligne-restant")?.textContent
        === "5");
    assert.equal((await cells(p, ".guichet-restant"))[0], "5");
    assert.match(await p.textContent("main"),
                 /Séance du .* : 10 places\./);
    await H.axe("places changées", p);

    /* a reminder for the club's families, then cancelled */
    await p.selectOption("#rap-type", "opening");
    await p.fill("#rap-jour", "2027-08-25");
    await p.fill("#rap-heure", "09:00");
    await p.click("#rappel button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('Rappel "
                            + "programmé pour 0 famille(s).')");
    await p.waitForSelector("#rappels table");
    assert.match(await p.textContent("#rappels"),
                 /Club du mercredi.*0 \/ 0/s);
    await H.axe("rappel programmé", p);
    await p.click("#rappels button[aria-label^='Annuler le rappel']");
    await p.waitForSelector("main [role=status]:has-text('Rappel annulé.')");
    await p.waitForSelector("#rappels td:has-text('annulé')");

    /* a wrong share is refused by its field, nothing changes */
    await p.fill("#ac-part", "150");
    await p.$eval("#ac-modifier", (f) => f.noValidate = true);
    await p.click("#ac-modifier button[type=submit]");
    await p.waitForSelector("#ac-modifier [role=alert]");
    assert.match(await p.textContent("#ac-modifier [role=alert]"),
                 /online_share_percent/);
    await p.close();
    assert.deepEqual(errors, []);
});

t("an agent reads the activities and changes nothing", async () => {
    const p = await staffPage("a.agent", 375);
    await p.goto(web.stack.base + "/agent/#/activites");
    await p.waitForSelector("#activites [data-activite=mercredi]");
    assert.equal(await p.$("#ac-creer"), null);
    await H.axe("activités agent 375", p);
    await shot("liste-375", p);
    await p.click("#activites [data-activite=mercredi] a");
    await p.waitForSelector("#seances");
    assert.equal(await p.$("#seances input"), null);
    assert.equal(await p.$("#gen"), null);
    assert.equal(await p.$("#ac-modifier"), null);
    await H.axe("activité agent 375", p);
    await shot("seances-375", p);
    await p.close();

    /* the centre's families get a message */
    const a = await staffPage("a.agent", 1200);
    await a.goto(web.stack.base + "/agent/#/activites?id=centre");
    await a.waitForSelector("#msg-familles");
    assert.equal(await a.$("#rappels"), null);
    await a.fill("#msg-objet", "Sortie au parc");
    await a.fill("#msg-texte", "Prévoyez une casquette.");
    await a.click("#msg-familles button[type=submit]");
    await a.waitForSelector("main [role=status]:has-text('Message envoyé "
                            + "à 1 famille(s).')");
    await H.axe("message envoyé", a);
    await a.close();

    /* an admin gives the club its régie */
    const c = await staffPage("c.chef", 1200);
    await c.goto(web.stack.base + "/agent/#/activites?id=mercredi");
    await c.waitForSelector("#regie-activite");
    await c.selectOption("#activite-regie", "principale");
    await c.click("#regie-activite button[type=submit]");
    await c.waitForSelector("main [role=status]:has-text('Régie "
                            + "enregistrée.')");
    await H.axe("régie de l'activité", c);
    await c.close();

    /* the régie's forms on a phone */
    const r = await staffPage("r.regie", 375);
    await r.goto(web.stack.base + "/agent/#/activites?id=mercredi");
    await r.waitForSelector("#seances input.places");
    await H.axe("activité régie 375", r);
    await shot("regie-375", r);
    await r.close();
    assert.deepEqual(errors, []);
});
