/*
 * inscriptions.js -- the family space's "Mes inscriptions" (#/inscriptions):
 * the children's enrolments and their state, the enrolment request.
 */

import * as api from "./api.js";
import * as F from "./format.js";
import { h, alertBox, cards } from "./dom.js";
import { childName, field, listOf, notYet, pick, settle, statusTag, when }
    from "./espace.js";

export async function viewInscriptions(ctx) {
    const me = ctx.me;
    const out = h("div", { id: "liste-inscriptions" },
                  h("p", { class: "chargement" }, "Chargement…"));
    const msg = h("div", { "aria-live": "polite" });
    const child = h("select", { id: "ins-enfant", required: true },
        (me.children || []).map((c) => h("option", { value: c.id },
                                          c.first_name)));
    const act = h("select", { id: "ins-activite", required: true });
    const today = F.todayParis();
    const from = h("input", { type: "date", id: "ins-du", required: true,
                              value: today });
    const to = h("input", { type: "date", id: "ins-au", required: true,
                            value: F.addDays(today, 364) });
    const ok = h("button", { class: "bouton", type: "submit" },
                 "Demander l'inscription");
    const form = h("form", { class: "carte", id: "form-inscription",
                             "aria-labelledby": "t-demande-ins" },
        h("h2", { id: "t-demande-ins" }, "Demander une inscription"),
        field("Enfant", child), field("Activité", act),
        h("div", { class: "outils-periode" }, field("Du", from),
          field("Au", to)),
        msg, h("div", { class: "boutons" }, ok),
        h("p", { class: "discret" }, "La demande est déposée ; la mairie "
          + "la valide ou la refuse en indiquant un motif. Vous recevez un "
          + "e-mail à chaque étape."));

    ctx.page("Mes inscriptions", out, form);

    const [ra, rl] = await Promise.all([api.get("/api/activities"),
                                        api.get("/api/enrolments")]);
    if (rl.status === 401) {
        return ctx.expired();
    }
    const acts = ra.ok ? listOf(ra.data, "activities") : [];
    act.replaceChildren(...acts.map((a) => h("option", { value: a.id },
                                              a.name || a.id)));
    const actName = (aid) => {
        const a = acts.find((x) => x.id === aid);
        return a ? a.name : aid;
    };

    if (api.isMissing(rl)) {
        form.remove();
        return notYet(ctx, "Mes inscriptions",
                      "La demande d'inscription");
    }
    if (!rl.ok) {
        out.replaceChildren(alertBox(rl.error.message));
    } else {
        const list = listOf(rl.data, "enrolments");
        out.replaceChildren(list.length === 0
            ? h("p", {}, "Aucune inscription.")
            : cards(h("div", { class: "tableau-defilant" }, h("table", {},
                h("caption", {}, "Inscriptions de mes enfants"),
                h("thead", {}, h("tr", {},
                    h("th", { scope: "col" }, "Enfant"),
                    h("th", { scope: "col" }, "Activité"),
                    h("th", { scope: "col" }, "Période"),
                    h("th", { scope: "col" }, "Statut"),
                    h("th", { scope: "col" }, "Motif"))),
                h("tbody", {}, list.map((e) => h("tr", {
                        dataset: { inscription: String(pick(e, "id", "") ) } },
                    h("td", {}, pick(e, "child_first_name", "first_name")
                                || childName(me, e.child_id)),
                    h("td", {}, pick(e, "activity_name")
                                || actName(e.activity_id)),
                    h("td", {}, "du " + when(e.from) + " au "
                                + when(e.to)),
                    h("td", {}, statusTag(e.status)),
                    h("td", {}, pick(e, "reason") || ""))))))));
    }

    /* The child's age against the activity's band, over the period asked:
     * said as soon as it is chosen, and once more before sending. */
    const ageProblem = () => {
        const a = acts.find((x) => x.id === act.value);
        const c = (me.children || []).find((x) => x.id === child.value);
        if (!a || !c || !c.birth_date || !Number.isFinite(a.age_min)
            || !Number.isFinite(a.age_max) || !from.value) {
            return null;
        }
        const end = to.value && to.value >= from.value ? to.value
                                                        : from.value;
        const first = F.ageOn(c.birth_date, from.value);
        const last = F.ageOn(c.birth_date, end);
        const band = "« " + a.name + " » accueille les enfants de "
                     + a.age_min + " à " + a.age_max + " ans";
        if (last < a.age_min || first > a.age_max) {
            return c.first_name + " aura " + first + " ans le "
                   + F.dayLong(from.value) + " : " + band + ". La mairie "
                   + "refusera sans doute cette demande.";
        }
        if (first < a.age_min || last > a.age_max) {
            return c.first_name + " aura " + first + " ans le "
                   + F.dayLong(from.value) + " et n'aura l'âge de "
                   + "l'activité que sur une partie de la période : " + band
                   + ".";
        }
        return null;
    };
    const ageBox = h("div", { id: "ins-age" });
    msg.before(ageBox);
    let warned = null;
    const showAge = () => {
        const p = ageProblem();
        ageBox.replaceChildren(p ? alertBox(p, "info") : "");
    };
    for (const x of [child, act, from, to]) {
        x.addEventListener("change", showAge);
    }
    showAge();

    form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        msg.replaceChildren();
        if (!from.value || !to.value || to.value < from.value) {
            msg.replaceChildren(alertBox("Indiquez une période valide (la "
                                         + "fin après le début)."));
            return;
        }
        const age = ageProblem();
        const sig = [child.value, act.value, from.value, to.value].join("|");
        if (age && warned !== sig) {
            warned = sig;
            msg.replaceChildren(alertBox(age + " Cliquez à nouveau sur "
                + "« Demander l'inscription » pour l'envoyer quand même."));
            return;
        }
        ok.disabled = true;
        const r = await api.post("/api/enrolments",
                                 { child_id: child.value,
                                   activity_id: act.value,
                                   from: from.value, to: to.value });
        ok.disabled = false;
        settle(ctx, r, msg, "Demande d'inscription déposée. La mairie vous "
               + "répondra par e-mail.", true);
        if (!r.ok && r.error && r.error.code === "documents_missing") {
            msg.append(h("p", {}, h("a", { href: "#/documents",
                                           id: "ins-pieces" },
                                       "Voir les pièces à fournir et les "
                                       + "déposer")));
        }
    });
}
