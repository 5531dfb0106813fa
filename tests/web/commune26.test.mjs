/*
 * commune26.test.mjs -- issue 26, the town's own settings in the back
 * office, in a real browser (Debian's chromium driven by playwright-core)
 * on a stack of its own started WITHOUT any town file (it needs `make
 * build`):
 *
 *   the admin finds no town, names it and gives its units (a wrong one
 *   refused with its message), then renames it and adds a unit; the
 *   activities page then offers those units; an agent reads the
 *   settings without a form.
 *
 * Every page checked is axe clean (serious / critical), at desktop width
 * and 375 px.  Screenshots in tests/out/web/t26-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import * as H from "./helpers.mjs";

const PW = "pw-" + Math.random().toString(36).slice(2, 12);


const web = H.ownStack("t26", null, {
    staff: [["c.chef", "admin"],
            ["a.agent", "agent"]]
        .map(([login, role]) => ({ login, role, name: "Camille " + role,
                                   password: PW }))
});
const { errors, shot, sql } = web;
const staffPage = (login, width) => web.staffPage(login, PW, width);

const t = web.ready ? test : test.skip;

async function unit(p, n, code, label, starts, ends) {
    await p.fill(`input[aria-label='Unité ${n} : code']`, code);
    await p.fill(`input[aria-label='Unité ${n} : libellé']`, label);
    await p.fill(`input[aria-label='Unité ${n} : début']`, starts);
    await p.fill(`input[aria-label='Unité ${n} : fin']`, ends);
}

t("the admin makes the town without a town file", async () => {
    const p = await staffPage("c.chef", 1200);
    await p.click("nav a[href='#/commune']");
    await p.waitForSelector("#commune-form");
    assert.match(await p.textContent("#commune-vide"), /Aucune commune/);
    await H.axe("commune vide", p);
    await p.fill("#commune-nom", "Villebois");
    await unit(p, 1, "MATIN", "Matin", "08:30", "12:00");
    await p.click("#unite-ajouter");
    /* a unit ending before it starts: refused, with the engine's path */
    await unit(p, 2, "REPAS", "Repas", "13:30", "12:00");
    await p.click("#commune-form button[type=submit]");
    await p.waitForSelector("#commune-form [role=alert]");
    assert.match(await p.textContent("#commune-form [role=alert]"),
                 /\$\.units\[1\]/);
    await H.axe("commune refusée", p);
    await unit(p, 2, "REPAS", "Repas", "12:00", "13:30");
    await p.click("#commune-form button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('enregistrée')");
    assert.match(await p.textContent("main [role=status]"),
                 /Commune « Villebois » enregistrée \(2 unités\)/);
    assert.equal(await p.$("#commune-vide"), null);
    assert.equal(await p.inputValue("#commune-nom"), "Villebois");

    /* renamed, a unit added */
    await p.fill("#commune-nom", "Villebois-sur-Loire");
    await p.click("#unite-ajouter");
    await unit(p, 3, "SOIR", "Soir", "16:30", "18:30");
    await p.click("#commune-form button[type=submit]");
    await p.waitForSelector("main [role=status]:has-text('3 unités')");
    assert.equal(await p.inputValue("input[aria-label='Unité 3 : code']"),
                 "SOIR");
    await H.axe("commune", p);
    await shot("commune-1200", p);

    /* the activities page knows the units now */
    await p.click("nav a[href='#/activites']");
    await p.waitForSelector("h1:has-text('Activités')");
    await p.waitForFunction(() => !document.querySelector("main .chargement"));
    assert.doesNotMatch(await p.textContent("main"),
                        /Aucune commune n'est chargée/);
    await p.close();

    const m = await staffPage("c.chef", 375);
    await m.goto(web.stack.base + "/agent/#/commune");
    await m.waitForSelector("#commune-form");
    await H.axe("commune 375", m);
    await shot("commune-375", m);
    await m.close();
    assert.deepEqual(errors, []);
});

t("an agent reads the town's settings", async () => {
    const p = await staffPage("a.agent", 1200);
    assert.equal(await p.isVisible("nav a[href='#/commune']"), false);
    await p.goto(web.stack.base + "/agent/#/commune");
    await p.waitForSelector("#commune table");
    assert.equal(await p.$("#commune-form"), null);
    assert.match(await p.textContent("#commune"),
                 /Villebois-sur-Loire.*MATIN.*Matin.*08:30.*12:00/s);
    await H.axe("commune agent", p);
    await p.close();
    assert.deepEqual(errors, []);
});
