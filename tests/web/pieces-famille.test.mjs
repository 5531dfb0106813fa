/*
 * pieces-famille.test.mjs -- documents the town requires of the whole
 * family (issue 25, office/required.c, migration 0111) in a real
 * browser, on a stack of its own (pieces_town.py's town: the Durand
 * family):
 *
 *   the admin's « Commune » lists « Pièces demandées à chaque famille »:
 *   adds « Justificatif de domicile » (blocks the enrolments and the
 *   bookings) and « Attestation CAF » (blocks nothing), saves; the
 *   family's dashboard counts them, « Mes documents » shows the table
 *   « Pièces demandées pour toute la famille » (Manquante, what a
 *   missing one blocks); « Déposer » prepares the form for the whole
 *   family; once sent the row says Déposée.  axe-clean at 375 px and
 *   1200 px.
 *
 * Skipped when build/ has no guichet-office.  Screenshots in
 * tests/out/web/pieces-famille-*.png.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { axe, login, ownStack } from "./helpers.mjs";

const LOGIN = "durand";
const PASSWORD = "pf-" + Math.random().toString(36).slice(2, 10);
const ADMIN = { login: "admin.pieces", role: "admin", name: "Admin",
                password: "admin-" + Math.random().toString(36).slice(2) };

const web = ownStack("pieces-famille", "pieces_town.py", {
    args: ["--login", LOGIN, "--password", PASSWORD], staff: [ADMIN] });
const { errors, shot, sql } = web;

const t = web.ready ? test : test.skip;

t("the town's list of family documents, seen and uploaded by the family",
  async () => {
    const a = await web.staffPage(ADMIN.login, ADMIN.password, 1200);
    await a.goto(web.stack.base + "/agent/#/commune");
    await a.waitForSelector("#pieces-famille-form");
    await a.click("#piece-famille-ajouter");
    await a.click("#piece-famille-ajouter");
    const rows = "#pieces-famille-form tbody tr";
    await a.selectOption(rows + ":nth-child(1) .type",
                         "justificatif-domicile");
    await a.selectOption(rows + ":nth-child(1) .blocks", "reservation");
    await a.selectOption(rows + ":nth-child(2) .type", "attestation-caf");
    await axe("commune pieces 1200", a);
    await a.click("#pieces-famille-form button[type=submit]");
    await a.waitForSelector("text=Pièces demandées à chaque famille "
                            + "enregistrées (2).");
    assert.equal(sql("select string_agg(type || ':' || blocks, ' ' order"
                     + " by position) from family_document_type"),
                 "justificatif-domicile:reservation attestation-caf:aucun");
    await shot("commune-1200", a);
    await a.context().close();

    for (const width of [375, 1200]) {
        const p = await web.newPage(width);
        await login(p, web.stack.base, LOGIN, PASSWORD);
        await p.waitForSelector("#alerte-pieces p");
        assert.match(await p.textContent("#alerte-pieces"),
                     /pour votre famille ou les activités/);
        await p.click("#alerte-pieces a");
        await p.waitForSelector("#pieces-famille");
        const row = "[data-piece=\"famille/justificatif-domicile\"]";
        assert.equal(await p.getAttribute(row, "data-statut"),
                     width === 375 ? "manquante" : "deposee");
        assert.match(await p.textContent(row),
                     /les inscriptions et les réservations/);
        await axe("pieces famille " + width, p);
        await shot("documents-" + width, p);
        if (width === 375) {
            await p.click(row + " button");
            assert.equal(await p.inputValue("#doc-type"),
                         "justificatif-domicile");
            assert.equal(await p.inputValue("#doc-enfant"), "");
            await p.setInputFiles("#doc-fichier", {
                name: "edf.pdf", mimeType: "application/pdf",
                buffer: Buffer.from("%PDF-1.4\n1 0 obj << >> endobj\n"
                                    + "trailer << >>\n%%EOF\n") });
            await p.click("#form-document button[type=submit]");
            await p.waitForSelector("text=Document envoyé");
            await p.waitForSelector(row + "[data-statut=deposee]");
        }
        await p.context().close();
    }
    assert.deepEqual(errors, []);
});
