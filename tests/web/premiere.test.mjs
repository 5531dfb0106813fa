/*
 * premiere.test.mjs -- a family's first connection (issue 25) in a real
 * browser, on a stack of its own (pieces_town.py's town: f-neuve has no
 * account; the test gives the town its e-mail):
 *
 *   guichetctl invite e-mails its dossier number and code (read from the
 *   outbox); from the login page, « Créer mon espace »: a wrong code is
 *   refused in words, then the right one with a login, a password and the
 *   CGU accepted; the activation link of the e-mail (read from the
 *   outbox) activates the account, once; the family logs in; a new
 *   version of the CGU is announced on the dashboard and accepted.
 *   axe-clean at 375 px (the creation) and 1200 px.
 *
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/premiere-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { axe, ownStack } from "./helpers.mjs";

const PASSWORD = "premiere-" + Math.random().toString(36).slice(2, 10);

const web = ownStack("premiere", "pieces_town.py", {
    setup: (w) => w.ctl("set-email", "f-neuve",
                        "famille.neuve@example.org") });
const { ctl, errors, newPage, shot, sql } = web;

const t = web.ready ? test : test.skip;

t("créer mon espace with the town's code, activate it, log in", async () => {
    assert.match(ctl("invite"), /^1 invitations queued/);
    const mail = sql("select body from outbox where kind = 'invitation'");
    const code = /code d'activation : (\S+)/.exec(mail)[1];
    const link = /(\/#\/creer-mon-espace\?dossier=\S+)/.exec(mail)[1];

    const m = await newPage(375);
    await m.goto(web.stack.base + "/#/connexion");
    await m.waitForSelector("#lien-creer");
    await m.goto(web.stack.base + link);
    await m.waitForSelector("#form-creer");
    assert.equal(await m.inputValue("#cr-dossier"), "f-neuve");
    await axe("creer mon espace 375", m);
    await m.fill("#cr-code", "AAAAA-BBBBB");
    await m.fill("#cr-email", "jade.parent@example.org");
    await m.fill("#cr-identifiant", "parent.jade");
    await m.fill("#cr-motdepasse", PASSWORD);
    await m.fill("#cr-confirmation", PASSWORD);
    await m.click("#form-creer button[type=submit]");
    await m.waitForSelector("#form-creer [role=alert]");
    assert.match(await m.textContent("#form-creer [role=alert]"),
                 /conditions générales/);
    await m.check("#cr-cgu");
    await m.click("#form-creer button[type=submit]");
    await m.waitForSelector("text=code d'activation incorrect");
    await m.fill("#cr-code", code.toLowerCase());
    await m.click("#form-creer button[type=submit]");
    await m.waitForSelector("#creer-envoye");
    assert.match(await m.textContent("#creer-envoye"),
                 /jade\.parent@example\.org.*parent\.jade/s);
    await axe("creer mon espace envoye 375", m);
    await shot("envoye-375", m);

    const act = sql("select body from outbox where kind = 'activation'");
    const token = /jeton=(\S+)/.exec(act)[1];
    await m.goto(web.stack.base + "/#/activer?jeton=" + token);
    await m.waitForSelector("text=Votre Espace Famille est activé");
    await axe("activer 375", m);
    await m.goto(web.stack.base + "/#/activer?jeton=" + token + "&x=1");
    await m.reload();
    await m.waitForSelector("#activation [role=alert]");
    assert.match(await m.textContent("#activation"), /n'est plus valable/);
    await m.context().close();

    const p = await newPage(1200);
    await p.goto(web.stack.base + "/#/connexion");
    await p.waitForSelector("#identifiant");
    await p.fill("#identifiant", "parent.jade");
    await p.fill("#motdepasse", PASSWORD);
    await p.click("form button[type=submit]");
    await p.waitForSelector("h1:has-text('Tableau de bord')");
    assert.match(await p.textContent("main"), /Jade/);

    /* a new version of the CGU: the dashboard says so, the family
     * accepts it */
    sql("insert into cgu_version (version, title) values (2, "
        + "'Conditions générales d''utilisation, version de rentrée')");
    await p.reload();
    await p.waitForSelector("#alerte-cgu a");
    await axe("tableau de bord cgu", p);
    await p.click("#alerte-cgu a");
    await p.waitForSelector("#cgu-accepter");
    assert.match(await p.textContent("#cgu-version"), /version 2/);
    await axe("cgu", p);
    await shot("cgu-1200", p);
    await p.click("#cgu-accepter");
    await p.waitForSelector("text=Conditions d'utilisation acceptées.");
    assert.equal(sql("select cgu_version from family where id = "
                     + "'f-neuve'"), "2");
    /* accepted: the page says so instead of asking again */
    await p.goto(web.stack.base + "/#/cgu");
    await p.waitForSelector("text=Vous avez accepté cette version le");
    assert.equal(await p.$("#cgu-accepter"), null);
    await p.context().close();
    assert.deepEqual(errors, []);
});
