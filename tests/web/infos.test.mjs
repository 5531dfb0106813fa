/*
 * infos.test.mjs -- the family's file, the last gaps (issue 25) in a real
 * browser, on a stack of its own (pieces_town.py's town; guichetctl adds
 * an agent):
 *
 *   the footer of every page leads to Mentions légales, the CGU (with the
 *   version in force), the accessibility statement and Aide, before and
 *   after logging in, and from the back office; each page axe-clean at
 *   375 px and 1200 px;
 *   the dashboard's « Télécharger mes données » downloads the family's
 *   file (GET /api/my-data);
 *   an agent publishes news and a PDF in « Publications »; the family
 *   reads the news and downloads the PDF on its dashboard (375 px); the
 *   news withdrawn is gone;
 *   the family invites a co-responsable, who opens the link, chooses a
 *   login and logs in on the same file; removed, that login fails.
 *
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/infos-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { axe, login, ownStack } from "./helpers.mjs";

const PASSWORD = "infos-" + Math.random().toString(36).slice(2, 10);
const STAFF_PASSWORD = "agent-" + Math.random().toString(36).slice(2, 10);

const web = ownStack("infos", "pieces_town.py", {
    args: ["--password", PASSWORD],
    staff: [{ login: "i.agent", role: "agent", name: "Inès Agent",
              password: STAFF_PASSWORD }] });
const { errors, shot } = web;

async function newPage(width) {
    const p = await web.newPage(width, { acceptDownloads: true });
    /* the site's Content-Security-Policy (headers-site.conf) blocks
     * nothing these pages need */
    await p.addInitScript(() => document.addEventListener(
        "securitypolicyviolation", (e) => console.error(
            "CSP violation: " + e.violatedDirective + " " + e.blockedURI)));
    p.on("console", (m) => {
        if (m.text().startsWith("CSP violation")) {
            errors.push(m.text());
        }
    });
    return p;
}

async function agentLogin(ag) {
    await ag.goto(web.stack.base + "/agent/#/connexion");
    await ag.waitForSelector("#ag-identifiant");
    await ag.fill("#ag-identifiant", "i.agent");
    await ag.fill("#ag-motdepasse", STAFF_PASSWORD);
    await ag.click("form button[type=submit]");
    await ag.waitForSelector("h1:has-text('Inscriptions à traiter')");
}

const t = web.ready ? test : test.skip;

const PAGES = [
    ["Mentions légales", "Mentions légales", /Directeur de la publication/],
    ["Conditions générales d'utilisation",
     "Conditions générales d'utilisation", /version \S+ du /],
    ["Accessibilité", "Déclaration d'accessibilité",
     /partiellement conforme.*RGAA.*Dérogations.*Défenseur des droits/s],
    ["Aide", "Aide", /Créer mon espace.*Télécharger mes données/s],
];

t("the footer's pages, logged out and in, phone and desktop", async () => {
    for (const width of [375, 1200]) {
        const p = await newPage(width);
        await p.goto(web.stack.base + "/#/connexion");
        await p.waitForSelector("#identifiant");
        for (const [link, title, text] of PAGES) {
            await p.click(".pied a:has-text(\"" + link + "\")");
            await p.waitForSelector("h1:has-text(\"" + title + "\")");
            await p.waitForFunction((re) => new RegExp(re, "s")
                .test(document.getElementById("contenu").textContent),
                text.source);
            await axe(title + " " + width, p);
        }
        await shot("accessibilite-" + width, p);
        /* logged in: the same footer, the menu still there */
        await login(p, web.stack.base, "durand", PASSWORD);
        await p.click(".pied a:has-text('Mentions légales')");
        await p.waitForSelector("h1:has-text('Mentions légales')");
        assert.equal(await p.isVisible("#nav"), true);
        await p.context().close();
    }
    const ag = await newPage(1200);
    await agentLogin(ag);
    await ag.click(".pied a:has-text('Accessibilité')");
    await ag.waitForSelector("h1:has-text(\"Déclaration d'accessibilité\")");
    await ag.context().close();
    assert.deepEqual(errors, []);
});

t("the family downloads its own data from the dashboard", async () => {
    const p = await newPage(375);
    await login(p, web.stack.base, "durand", PASSWORD);
    await p.waitForSelector("#mes-donnees");
    await axe("tableau de bord 375", p);
    const [dl] = await Promise.all([p.waitForEvent("download"),
                                    p.click("#mes-donnees")]);
    assert.match(dl.suggestedFilename(), /^mes-donnees-.+\.json$/);
    const d = JSON.parse(fs.readFileSync(await dl.path(), "utf8"));
    assert.equal(d.family.login, "durand");
    assert.deepEqual(d.children.map((c) => c.first_name).sort(),
                     ["Alice", "Bastien"]);
    assert.ok(d.connections.length >= 1);
    assert.ok(!JSON.stringify(d).includes("password_hash"));
    await p.context().close();
    assert.deepEqual(errors, []);
});

t("the town publishes news and a document, families read them",
  async () => {
    const ag = await newPage(1200);
    await agentLogin(ag);
    await ag.click("#nav a[href='#/publications']");
    await ag.waitForSelector("#form-actualite");
    await axe("agent publications", ag);
    /* nothing typed: said, nothing sent */
    await ag.click("#form-actualite button[type=submit]");
    await ag.waitForSelector("#form-actualite [role=alert]");
    await ag.fill("#act-titre", "Menus de décembre");
    await ag.fill("#act-texte", "Repas de Noël le jeudi 17.");
    await ag.click("#form-actualite button[type=submit]");
    await ag.waitForSelector("text=Actualité publiée : Menus de décembre.");
    await ag.fill("#pub-titre", "Règlement intérieur 2026-2027");
    await ag.selectOption("#pub-categorie", "reglement");
    await ag.setInputFiles("#pub-fichier", {
        name: "reglement.pdf", mimeType: "application/pdf",
        buffer: Buffer.from("%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>"
                            + "\n%%EOF\n") });
    await ag.click("#form-publication button[type=submit]");
    await ag.waitForSelector("text=Document publié : Règlement intérieur "
                             + "2026-2027.");
    assert.match(await ag.textContent("#documents-commune"),
                 /Règlement intérieur 2026-2027.*Règlement.*i\.agent/s);
    await axe("agent publications filled", ag);
    await shot("agent", ag);

    const p = await newPage(375);
    await login(p, web.stack.base, "durand", PASSWORD);
    await p.waitForSelector("#bloc-actualites:not([hidden])");
    assert.match(await p.textContent("#bloc-actualites"),
                 /Menus de décembre.*Repas de Noël le jeudi 17\./s);
    await p.waitForSelector("#bloc-docs-commune:not([hidden])");
    await axe("tableau de bord publications 375", p);
    await shot("tableau-375", p);
    const [dl] = await Promise.all([
        p.waitForEvent("download"),
        p.click("#bloc-docs-commune a:has-text('Règlement intérieur')")]);
    assert.equal(dl.suggestedFilename(), "reglement.pdf");
    assert.match(fs.readFileSync(await dl.path(), "latin1"), /^%PDF-1\.4/);

    /* withdrawn in the back office: gone from the dashboard */
    const withdraw = "#actualites article:has-text('Menus de décembre') "
                     + "button:has-text('Retirer')";
    await ag.click(withdraw);
    await ag.click("#actualites article:has-text('Menus de décembre') "
                   + "button:has-text('Confirmer')");
    await ag.waitForSelector("text=Actualité retirée : Menus de décembre.");
    await p.reload();
    await p.waitForSelector("#bloc-docs-commune:not([hidden])");
    assert.equal(await p.isHidden("#bloc-actualites"), true);
    await ag.context().close();
    await p.context().close();
    assert.deepEqual(errors, []);
});

t("a co-responsable invited, with their own login, then removed",
  async () => {
    const p = await newPage(375);
    await login(p, web.stack.base, "durand", PASSWORD);
    await p.goto(web.stack.base + "/#/co-responsable");
    await p.waitForSelector("#form-co");
    await axe("co-responsable 375", p);
    await p.click("#form-co button[type=submit]");
    await p.waitForSelector("#form-co [role=alert]");
    await p.fill("#co-prenom", "Paul");
    await p.fill("#co-nom", "Durand");
    await p.fill("#co-email", "paul@example.org");
    await p.click("#form-co button[type=submit]");
    await p.waitForSelector("#co-invitation");
    await axe("co-responsable invitation 375", p);
    const link = await p.inputValue("#co-lien");
    assert.match(link, /#\/invitation\?jeton=[\w-]{40,}$/);

    const c = await newPage(1200);
    await c.goto(web.stack.base + "/" + link.slice(link.indexOf("#")));
    await c.waitForSelector("#form-invitation");
    await axe("invitation 1200", c);
    const pw = "paul-" + Math.random().toString(36).slice(2, 10);
    await c.fill("#inv-identifiant", "paul.durand");
    await c.fill("#inv-motdepasse", pw);
    await c.fill("#inv-confirmation", pw + "x");
    await c.click("#form-invitation button[type=submit]");
    await c.waitForSelector("#form-invitation [role=alert]");
    assert.match(await c.textContent("#form-invitation [role=alert]"),
                 /mots de passe sont différents/);
    await c.fill("#inv-confirmation", pw);
    await c.click("#form-invitation button[type=submit]");
    await c.waitForSelector("text=Acceptez les conditions générales");
    await c.check("#inv-cgu");
    await c.click("#form-invitation button[type=submit]");
    await c.waitForSelector("#inv-ok");
    await login(c, web.stack.base, "paul.durand", pw);
    await c.waitForSelector("text=Alice");
    await shot("co-responsable-1200", c);

    await p.reload();
    await p.waitForSelector("#co-actuel");
    assert.match(await p.textContent("#co-actuel"),
                 /Paul Durand.*Accès actif.*paul\.durand/s);
    await axe("co-responsable actif 375", p);
    await p.click("#co-retirer");
    await p.click("#co-retirer");
    await p.waitForSelector("text=Co-responsable retiré.");
    await p.waitForSelector("#form-co");
    await c.goto(web.stack.base + "/#/connexion");
    await c.fill("#identifiant", "paul.durand");
    await c.fill("#motdepasse", pw);
    await c.click("form button[type=submit]");
    await c.waitForSelector("text=Identifiant ou mot de passe incorrect");
    await c.context().close();
    await p.context().close();
    assert.deepEqual(errors, []);
});
