/*
 * demo.test.mjs -- the demo town (demo/amberieu.json) as a person trying
 * it meets it (issue 22, "Done when"): an activity not open yet shows the
 * countdown, one whose deadline has passed shows its closed cells.  On a
 * stack of its own (tests/integration/stack.py serve demo/amberieu.json,
 * which needs `make build`), logged in as the demo family martin.
 * Screenshots tests/out/web/demo-*.png.
 */

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import * as H from "./helpers.mjs";

const TOWN = path.join(H.ROOT, "demo", "amberieu.json");
const READY = fs.existsSync(path.join(H.ROOT, "build", "guichet-office"));
const demo = JSON.parse(fs.readFileSync(TOWN, "utf8"));
const fam = demo.families.find((f) => f.login === "martin");

let stack = null;
let browser;
let page;

before(async () => {
    if (!READY) {
        return;
    }
    stack = await H.startStack(TOWN);
    browser = await chromium.launch({ executablePath: H.CHROMIUM,
                                      args: H.ARGS });
    page = await (await browser.newContext({
        locale: "fr-FR", viewport: { width: 375, height: 800 } })).newPage();
    await H.login(page, stack.base, fam.login, fam.password);
});

after(async () => {
    await browser?.close();
    await H.stopStack(stack);
});

const t = READY ? test : test.skip;

/* the activity of the demo with the latest opening still ahead */
const later = demo.activities.filter((a) => a.booking_opens_at
    && Date.parse(a.booking_opens_at) > Date.now())
    .sort((a, b) => Date.parse(b.booking_opens_at)
                    - Date.parse(a.booking_opens_at))[0];

t("la démo a une activité pas encore ouverte: le compte à rebours",
  { skip: later ? false : "every activity of the demo is open" },
  async () => {
      await page.goto(stack.base + "/#/reserver");
      await page.waitForSelector("#activite");
      await page.selectOption("#activite", later.id);
      await page.waitForSelector("#compte-a-rebours");
      assert.match(await page.textContent("#ouverture"),
                   /Les réservations ouvrent le/);
      await page.waitForSelector("#plannings .case.pas_ouvert, "
                                 + "#plannings .case.non_inscrit");
      await H.axe("démo compte à rebours", page);
      await H.shot("demo-compte-a-rebours", page);
  });

t("la démo a une activité dont le délai est passé: « Fermé »", async () => {
    const closed = demo.activities.find((a) => a.id === "stage-ski");
    assert.ok(closed, "the demo has its closed activity");
    await page.goto(stack.base + "/#/reserver");
    await page.waitForSelector("#activite");
    await page.selectOption("#activite", closed.id);
    await page.waitForSelector("#plannings .case.ferme");
    assert.match(await page.textContent("#plannings"), /Fermé/);
    await H.axe("démo fermé", page);
    await H.shot("demo-ferme", page);
});
