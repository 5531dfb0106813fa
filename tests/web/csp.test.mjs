/*
 * csp.test.mjs -- the website under its Content-Security-Policy
 * (lua-free-config/headers-site.conf, docs/reliability.md, Security):
 * the pages are served with it, and going through the Espace Famille
 * (log in, dashboard, planning, demandes, invoices, documents, messages)
 * and the back office's login page raises no CSP violation: nothing the
 * site needs is blocked by it.
 *
 *   cd tests/web && npm ci && GUICHET_URL=http://127.0.0.1:PORT node --test
 *
 * Needs a real stack (GUICHET_URL; the development fake sends no CSP): it
 * skips itself without one.  GUICHET_LOGIN / GUICHET_PASSWORD log in.
 */

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const BASE = (process.env.GUICHET_URL || "").replace(/\/+$/, "");
const LOGIN = process.env.GUICHET_LOGIN || "martin";
const PASSWORD = process.env.GUICHET_PASSWORD || "secret-demo";
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic",
              "--lang=fr-FR", "--no-first-run",
              "--disable-background-networking",
              "--disable-component-update", "--disable-sync"];

let browser;
let page;
const violations = [];

/* Every violation the browser reports, as an event in the page (recorded
 * by an init script, which the CSP does not govern) or on the console. */
async function watch(p) {
    await p.addInitScript(() => {
        window.__csp = [];
        document.addEventListener("securitypolicyviolation", (e) => {
            window.__csp.push(e.violatedDirective + " " + e.blockedURI);
        });
    });
    p.on("console", (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) {
            violations.push(m.text());
        }
    });
}

async function collect(p) {
    violations.push(...await p.evaluate(() => window.__csp || []));
}

before(async () => {
    if (!BASE) {
        return;
    }
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    const context = await browser.newContext({ locale: "fr-FR" });
    page = await context.newPage();
    await watch(page);
});

after(async () => {
    await browser?.close();
});

test("the site is served with its CSP", { skip: !BASE && "no GUICHET_URL" },
     async () => {
    for (const path of ["/", "/agent/"]) {
        const res = await page.goto(BASE + path);
        const csp = res.headers()["content-security-policy"] || "";
        assert.match(csp, /default-src 'self'/, path);
        assert.match(csp, /frame-ancestors 'none'/, path);
        assert.equal(res.headers()["referrer-policy"], "same-origin", path);
        await collect(page);
    }
});

test("the Espace Famille works under it: no violation",
     { skip: !BASE && "no GUICHET_URL" }, async () => {
    await page.goto(BASE + "/#/connexion");
    await page.waitForSelector("#identifiant");
    await page.fill("#identifiant", LOGIN);
    await page.fill("#motdepasse", PASSWORD);
    await page.click("form button[type=submit]");
    await page.waitForSelector("h1:has-text('Tableau de bord')");
    await page.waitForFunction(() => !document.querySelector(".chargement"));
    await collect(page);
    /* each view of the navigation, as a parent clicks it */
    const links = await page.$$eval("nav a[href^='#/']",
                                    (as) => as.map((a) => a.hash));
    assert.ok(links.length >= 3, links.join(" "));
    for (const hash of links) {
        await page.goto(BASE + "/" + hash);
        await page.waitForFunction(
            () => !document.querySelector(".chargement"));
        await collect(page);
    }
    /* the site's own requests keep their Origin under the Referrer-Policy:
     * logging out is a cookie-authenticated DELETE that the module
     * refuses 403 bad_origin without it */
    const status = await page.evaluate(async () => (await fetch(
        "/api/session", { method: "DELETE" })).status);
    assert.equal(status, 204);
    assert.deepEqual(violations, []);
});

test("the back office's login page works under it: no violation",
     { skip: !BASE && "no GUICHET_URL" }, async () => {
    await page.goto(BASE + "/agent/");
    await page.waitForSelector("#ag-identifiant");
    await collect(page);
    assert.deepEqual(violations, []);
});
