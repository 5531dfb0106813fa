/*
 * publications.js -- what the town publishes to every family, on the
 * dashboard (issue 25): « Actualités » shown today (GET /api/town/news)
 * and « Documents de la commune » (rules, price lists, menus: PDF,
 * GET /api/town/documents, each a plain link with `download`: the
 * session cookie goes with it).  A block with nothing in it is not shown;
 * a server without these routes shows neither.
 */

import * as api from "./api.js";
import { h } from "./dom.js";
import { when } from "./espace.js";

const CATEGORIES = { reglement: "Règlement", tarifs: "Tarifs",
                     menus: "Menus", autre: "Document" };

function size(n) {
    return n >= 1048576 ? (n / 1048576).toFixed(1).replace(".", ",") + " Mo"
                        : Math.max(1, Math.round(n / 1024)) + " ko";
}

/* The two blocks, filled when their answers come. */
export function townBlocks() {
    const news = h("section", { class: "carte", id: "bloc-actualites",
                                "aria-labelledby": "t-actualites",
                                hidden: true },
                   h("h2", { id: "t-actualites" }, "Actualités"));
    const docs = h("section", { class: "carte", id: "bloc-docs-commune",
                                "aria-labelledby": "t-docs-commune",
                                hidden: true },
                   h("h2", { id: "t-docs-commune" },
                     "Documents de la commune"));

    api.get("/api/town/news").then((r) => {
        const list = r.ok && r.data && Array.isArray(r.data.news)
            ? r.data.news : [];
        if (!list.length) {
            return;
        }
        news.append(...list.map((n) => h("article", { class: "actualite" },
            h("h3", {}, n.title),
            h("p", { class: "discret" }, "Publié le " + when(n.from)),
            h("p", { class: "texte-libre" }, n.body))));
        news.hidden = false;
    });

    api.get("/api/town/documents").then((r) => {
        const list = r.ok && r.data && Array.isArray(r.data.documents)
            ? r.data.documents : [];
        if (!list.length) {
            return;
        }
        docs.append(h("ul", { class: "liste-docs" }, ...list.map((d) =>
            h("li", {},
              h("a", { href: "/api/town/documents/" + encodeURIComponent(d.id),
                       download: d.filename },
                d.title),
              " ", h("span", { class: "discret" },
                     "(" + (CATEGORIES[d.category] || "Document")
                     + ", PDF, " + size(d.size) + ", publié le "
                     + when(d.published_at) + ")")))));
        docs.hidden = false;
    });

    return [news, docs];
}
