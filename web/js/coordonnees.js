/*
 * coordonnees.js -- Mes coordonnées (issue 25): the family's e-mail and
 * phones, changed at once (PUT /api/contact), and its postal address,
 * whose change waits for the town's validation (POST /api/contact/address)
 * because it may change the residence and so the prices; the family sees
 * its request waiting, or refused with the town's reason.  Paperless
 * invoices are chosen here too (PUT /api/contact/paperless).
 */

import * as api from "./api.js";
import { h, alertBox } from "./dom.js";
import { clearOnInput, field, settle, statusTag, when } from "./espace.js";

function addressLines(a) {
    return [a.line1, a.line2, (a.postcode || "") + " " + (a.city || "")]
        .filter((x) => x && x.trim());
}

function addressBlock(a, idName) {
    return h("p", { class: "adresse", id: idName },
             ...addressLines(a).flatMap((l, i) => i ? [h("br"), l] : [l]));
}

/* The request's state, said in words. */
function changeBox(c) {
    if (!c || c.status === "validee") {
        return null;
    }
    if (c.status === "demandee") {
        return h("div", { class: "info", role: "status",
                          id: "adresse-attente" },
            h("p", {}, "Changement d'adresse en attente de validation par "
              + "la mairie (demandé le " + when(c.requested_at) + ") : "),
            addressBlock(c),
            h("p", {}, "Vos tarifs ne changent qu'une fois la nouvelle "
              + "adresse validée."));
    }
    if (c.status === "refusee") {
        return h("div", { class: "alerte", id: "adresse-refus" },
            h("p", {}, "Votre demande de changement d'adresse du "
              + when(c.requested_at) + " a été refusée. ",
              statusTag("refusee")),
            h("p", {}, "Motif : " + (c.reason || "—")));
    }
    return null;
}

export async function viewCoordonnees(ctx) {
    const out = h("div", { id: "coordonnees" },
                  h("p", { class: "chargement" }, "Chargement…"));
    ctx.page("Mes coordonnées",
             h("p", {}, "La mairie vous écrit à votre adresse e-mail et "
               + "vous appelle à ces numéros. Une nouvelle adresse postale "
               + "est vérifiée par la mairie avant de s'appliquer : elle "
               + "peut changer vos tarifs (résident ou non de la "
               + "commune)."), out);

    const r = await api.get("/api/contact");
    if (r.status === 401) {
        return ctx.expired();
    }
    if (!r.ok) {
        out.replaceChildren(api.isMissing(r)
            ? h("p", { class: "info" }, "La modification de vos "
                + "coordonnées n'est pas encore disponible en ligne.")
            : alertBox(r.error.message));
        return;
    }
    const c = r.data;

    const email = h("input", { type: "email", id: "co-email",
                               autocomplete: "email", value: c.email || "" });
    const mobile = h("input", { type: "tel", id: "co-mobile",
                                autocomplete: "tel",
                                value: c.phone_mobile || "" });
    const home = h("input", { type: "tel", id: "co-domicile",
                              value: c.phone_home || "" });
    const work = h("input", { type: "tel", id: "co-travail",
                              value: c.phone_work || "" });
    const msg1 = h("div", { "aria-live": "polite" });
    const ok1 = h("button", { class: "bouton", type: "submit" },
                  "Enregistrer");
    const f1 = h("form", { class: "carte", id: "form-contact",
                           "aria-labelledby": "t-contact" },
        h("h2", { id: "t-contact" }, "Adresse e-mail et téléphones"),
        field("Adresse e-mail", email, "Les messages de la mairie et les "
              + "liens de mot de passe y sont envoyés."),
        field("Téléphone portable", mobile, "Par exemple 06 12 34 56 78."),
        field("Téléphone du domicile", home),
        field("Téléphone professionnel", work),
        msg1, h("div", { class: "boutons" }, ok1));
    clearOnInput(f1, msg1);

    const line1 = h("input", { type: "text", id: "co-ligne1", required: true,
                               autocomplete: "address-line1" });
    const line2 = h("input", { type: "text", id: "co-ligne2",
                               autocomplete: "address-line2" });
    const postcode = h("input", { type: "text", id: "co-cp", required: true,
                                  autocomplete: "postal-code",
                                  inputmode: "numeric", maxlength: "10" });
    const city = h("input", { type: "text", id: "co-ville", required: true,
                              autocomplete: "address-level2" });
    const msg2 = h("div", { "aria-live": "polite" });
    const ok2 = h("button", { class: "bouton", type: "submit" },
                  "Demander le changement");
    const f2 = h("form", { class: "carte", id: "form-adresse",
                           "aria-labelledby": "t-nouvelle" },
        h("h3", { id: "t-nouvelle" }, "Demander un changement d'adresse"),
        field("Numéro et voie", line1),
        field("Complément (bâtiment, appartement…)", line2),
        field("Code postal", postcode), field("Commune", city),
        msg2, h("div", { class: "boutons" }, ok2));
    clearOnInput(f2, msg2);

    /* paperless invoices, « adhésion à la facture en ligne » */
    const paperless = h("input", { type: "checkbox", id: "co-en-ligne" });
    paperless.checked = !!c.paperless;
    const msg3 = h("div", { "aria-live": "polite" });
    const ok3 = h("button", { class: "bouton", type: "submit" },
                  "Enregistrer ce choix");
    const f3 = h("form", { class: "carte", id: "form-facture",
                           "aria-labelledby": "t-facture" },
        h("h2", { id: "t-facture" }, "Facture en ligne"),
        h("p", { id: "facture-mode" }, c.paperless
            ? "Vos factures vous sont envoyées par e-mail ; vous ne les "
              + "recevez plus par courrier."
            : "Vos factures vous sont envoyées par courrier."),
        h("div", { class: "choix" }, h("label", { for: "co-en-ligne" },
          paperless, " Je choisis la facture en ligne : un e-mail quand "
          + "une facture est émise, plus de courrier")),
        msg3, h("div", { class: "boutons" }, ok3));
    f3.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        ok3.disabled = true;
        const u = await api.put("/api/contact/paperless",
                                { paperless: paperless.checked });
        ok3.disabled = false;
        settle(ctx, u, msg3, paperless.checked
            ? "Facture en ligne choisie : vos prochaines factures vous "
              + "seront envoyées par e-mail."
            : "Vos prochaines factures vous seront envoyées par courrier.");
    });

    out.replaceChildren(f1,
        h("section", { class: "carte", id: "bloc-adresse",
                       "aria-labelledby": "t-adresse" },
          h("h2", { id: "t-adresse" }, "Adresse postale"),
          c.address ? addressBlock(c.address, "adresse-actuelle")
                    : h("p", { id: "adresse-actuelle" },
                        "Aucune adresse enregistrée."),
          h("p", { class: "discret" }, c.resident === false
              ? "Vous êtes non-résident de la commune."
              : "Vous êtes résident de la commune."),
          changeBox(c.address_change), f2), f3);

    f1.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        ok1.disabled = true;
        const u = await api.put("/api/contact", {
            email: email.value.trim() || null,
            phone_mobile: mobile.value.trim() || null,
            phone_home: home.value.trim() || null,
            phone_work: work.value.trim() || null });
        ok1.disabled = false;
        settle(ctx, u, msg1, "Coordonnées enregistrées.");
    });

    f2.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        ok2.disabled = true;
        const u = await api.post("/api/contact/address", {
            line1: line1.value.trim(), line2: line2.value.trim() || null,
            postcode: postcode.value.trim(), city: city.value.trim() });
        ok2.disabled = false;
        settle(ctx, u, msg2, "Demande de changement d'adresse envoyée : "
               + "la mairie va la vérifier.");
    });
}
