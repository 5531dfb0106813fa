/*
 * commune.js -- what a town writes about itself on the website's
 * information pages (mentions légales, accessibilité, aide: infos.js;
 * docs/website.md, "The town's texts").  A town adapts this file and
 * nothing else: its name, the publisher, the host, its contacts, the
 * accessibility audit's result.  Plain text only (shown as text, never as
 * HTML).  The terms of use (CGU) are not here: their version and title are
 * the server's (cgu_version, GET /api/account/cgu).
 */

export const COMMUNE = {
    nom: "Commune de Guichet-sur-Loire",
    adresse: "Hôtel de ville, 1 place de la Mairie, 45000 Guichet-sur-Loire",
    telephone: "02 00 00 00 00",
    courriel: "enfance@mairie.example",
    horaires: "du lundi au vendredi, de 8 h 30 à 12 h et de 13 h 30 à 17 h",
    /* mentions légales */
    directeur: "le maire de la commune",
    siret: "000 000 000 00000",
    hebergeur: "Hébergé par la commune, sur ses serveurs "
               + "(hôtel de ville, 1 place de la Mairie).",
    dpo: "dpo@mairie.example",
    /* accessibilité (RGAA 4.1) */
    rgaa: {
        etat: "partiellement conforme",
        taux: "",                     /* "87 %" once an audit is made */
        audit: "Auto-évaluation du service enfance, décembre 2026.",
        derogations: [
            "Les factures au format PDF antérieures à 2026 "
            + "(charge disproportionnée) : elles sont envoyées sous une "
            + "forme accessible sur simple demande.",
        ],
        nonConformes: [
            "Les documents PDF déposés par la commune (règlements, menus) "
            + "peuvent ne pas être balisés.",
        ],
        date: "6 décembre 2026",
    },
};
