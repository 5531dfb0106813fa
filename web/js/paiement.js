/*
 * paiement.js -- the family space's return from an online payment: the
 * provider sends the family back to Mes factures (#/factures?paiement=),
 * which shows the payment's state above the invoices.
 */

import * as api from "./api.js";
import * as F from "./format.js";
import { h, announce, alertBox } from "./dom.js";
import { pick, shortRef, statusTag } from "./espace.js";

/* The answer of GET /api/payments/{id}, shown above the invoices. */
export async function paymentReturn(ctx, op) {
    const box = h("div", { id: "retour-paiement", "aria-live": "polite" },
                  h("p", { class: "chargement" },
                    "Vérification du paiement…"));
    let r;
    /* The provider's notification may reach us just after the browser:
     * a pending operation is asked again a few times. */
    for (let i = 0; i < 6; i++) {
        r = await api.get("/api/payments/" + encodeURIComponent(op));
        if (!r.ok || !/^(pending|created|en_attente)$/.test(r.data.status)) {
            break;
        }
        await api.sleep(1000);
    }
    if (r.status === 401) {
        ctx.expired();
        return box;
    }
    if (!r.ok) {
        box.replaceChildren(alertBox(r.error.message));
        return box;
    }
    const p = r.data;
    const amount = F.euros(pick(p, "amount_cents", "total_cents"));
    const st = p.status;
    let text;
    let kind = "info";
    if (/^(paid|payee|success|succeeded)$/.test(st)) {
        text = "Paiement accepté : " + amount + " payés. Merci.";
        kind = "succes";
    } else if (/^(refused|refusee|failed)$/.test(st)) {
        text = "Paiement refusé : vos factures restent à payer.";
        kind = "alerte";
    } else if (/^(abandoned|abandonnee|cancelled)$/.test(st)) {
        text = "Paiement abandonné : vos factures restent à payer.";
        kind = "alerte";
    } else {
        text = "Paiement en attente de confirmation par la DGFiP. "
               + "Revenez dans quelques minutes.";
    }
    box.replaceChildren(h("div", { class: kind, role: "status",
                                   dataset: { statut: st } },
        h("p", {}, h("strong", {}, text)),
        h("p", { class: "discret" }, "Référence du paiement : ",
          h("strong", { id: "reference-paiement" },
            shortRef(p.operation_id || p.id || op)),
          " (à rappeler à la régie) — ", statusTag(st))));
    announce(text);
    return box;
}
