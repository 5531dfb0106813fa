/*
 * infos.js -- the website's information pages, reachable from every page
 * (the footer, with the terms of use of premiere.js): Mentions légales,
 * Accessibilité (the RGAA statement: conformity state, derogations,
 * contact, recourse) and Aide.  Public: shown with or without a session.
 * What a town adapts (its name, publisher, host, contacts, audit) is in
 * commune.js; the words around it are here.
 */

import { h } from "./dom.js";
import { COMMUNE as C } from "./commune.js";

function contact() {
    return h("ul", {},
        h("li", {}, "Par la messagerie de l'Espace Famille, une fois "
          + "connecté."),
        h("li", {}, "Par courriel : ", h("a", { href: "mailto:" + C.courriel },
                                        C.courriel)),
        h("li", {}, "Par téléphone : " + C.telephone + ", " + C.horaires
          + "."),
        h("li", {}, "Par courrier : " + C.adresse + "."));
}

export function viewMentions(ctx) {
    ctx.page("Mentions légales",
        h("h2", {}, "Éditeur"),
        h("p", {}, C.nom + ", " + C.adresse + ". SIRET " + C.siret + "."),
        h("p", {}, "Directeur de la publication : " + C.directeur + "."),
        h("h2", {}, "Hébergement"),
        h("p", {}, C.hebergeur),
        h("h2", {}, "Données personnelles"),
        h("p", {}, "Les données de votre dossier (famille, enfants, "
          + "inscriptions, réservations, factures, messages) sont traitées "
          + "par la commune pour l'accueil de vos enfants et la "
          + "facturation des activités, au titre de sa mission de service "
          + "public. Elles ne sont transmises qu'aux agents du service "
          + "enfance et au comptable public."),
        h("p", {}, "Vous pouvez télécharger à tout moment les données de "
          + "votre dossier depuis le tableau de bord (« Télécharger mes "
          + "données »). Pour les faire rectifier ou effacer, écrivez au "
          + "délégué à la protection des données : ",
          h("a", { href: "mailto:" + C.dpo }, C.dpo),
          ". Vous pouvez aussi saisir la CNIL (",
          h("a", { href: "https://www.cnil.fr/" }, "www.cnil.fr"), ")."),
        h("h2", {}, "Cookies"),
        h("p", {}, "Le site n'utilise qu'un cookie de session, "
          + "nécessaire à la connexion ; aucun cookie de mesure "
          + "d'audience ni de publicité."));
}

export function viewAccessibilite(ctx) {
    const r = C.rgaa;
    ctx.page("Déclaration d'accessibilité",
        h("p", {}, C.nom + " s'engage à rendre ses services en ligne "
          + "accessibles, conformément à l'article 47 de la loi "
          + "n° 2005-102 du 11 février 2005. Cette déclaration "
          + "d'accessibilité s'applique à l'Espace Famille."),
        h("h2", {}, "État de conformité"),
        h("p", { id: "rgaa-etat" }, "L'Espace Famille est " + r.etat
          + " avec le référentiel général d'amélioration de "
          + "l'accessibilité (RGAA), version 4.1"
          + (r.taux ? " : " + r.taux + " des critères sont respectés."
                    : ".")),
        h("p", {}, r.audit),
        h("h2", {}, "Contenus non accessibles"),
        h("h3", {}, "Non-conformités"),
        h("ul", {}, ...r.nonConformes.map((t) => h("li", {}, t))),
        h("h3", {}, "Dérogations pour charge disproportionnée"),
        h("ul", {}, ...r.derogations.map((t) => h("li", {}, t))),
        h("h2", {}, "Établissement de cette déclaration"),
        h("p", {}, "Cette déclaration a été établie le " + r.date + ". "
          + "Technologies utilisées : HTML, CSS, JavaScript. Tests faits "
          + "avec les navigateurs Firefox et Chromium, le lecteur d'écran "
          + "NVDA et l'outil axe."),
        h("h2", {}, "Retour d'information et contact"),
        h("p", {}, "Si vous n'arrivez pas à accéder à un contenu ou à un "
          + "service, contactez le service enfance pour être orienté vers "
          + "une alternative accessible ou obtenir le contenu sous une "
          + "autre forme :"),
        contact(),
        h("h2", {}, "Voies de recours"),
        h("p", {}, "Si vous avez signalé un défaut d'accessibilité qui "
          + "vous empêche d'accéder à un contenu ou à un service et que "
          + "vous n'avez pas obtenu de réponse satisfaisante, vous pouvez :"),
        h("ul", {},
            h("li", {}, "écrire un message au Défenseur des droits (",
              h("a", { href: "https://formulaire.defenseurdesdroits.fr/" },
                "formulaire en ligne"), ") ;"),
            h("li", {}, "contacter le délégué du Défenseur des droits de "
              + "votre région ("
              , h("a", { href: "https://www.defenseurdesdroits.fr/saisir/"
                               + "delegues" }, "liste des délégués"),
              ") ;"),
            h("li", {}, "envoyer un courrier gratuit, sans timbre : "
              + "Défenseur des droits, Libre réponse 71120, "
              + "75342 Paris CEDEX 07.")));
}

export function viewAide(ctx) {
    const q = (title, ...text) => [h("h3", {}, title),
                                   ...text.map((t) => h("p", {}, t))];
    ctx.page("Aide",
        h("h2", {}, "Premiers pas"),
        ...q("Je n'ai pas encore de compte",
             "Choisissez « Créer mon espace » en bas de page : il faut le "
             + "numéro de dossier et le code d'activation envoyés par la "
             + "mairie, puis une adresse e-mail où vous recevrez le lien "
             + "d'activation (valable 24 heures)."),
        ...q("J'ai oublié mon mot de passe",
             "Sur la page de connexion, choisissez « Mot de passe "
             + "oublié ? » et indiquez votre identifiant : un lien vous est "
             + "envoyé par e-mail."),
        h("h2", {}, "Réserver"),
        ...q("Inscrire mon enfant",
             "Une activité se réserve une fois l'enfant inscrit : « Mes "
             + "inscriptions », puis « Demander une inscription ». Les "
             + "pièces demandées sont listées dans « Mes documents »."),
        ...q("Réserver ou annuler des séances",
             "« Modifier les réservations » : cochez les enfants, "
             + "choisissez l'activité, sélectionnez les séances puis "
             + "validez. Une séance annulée après la date limite reste "
             + "facturée."),
        ...q("Signaler une absence",
             "« Mes réservations », puis « Justifier une absence » sur la "
             + "séance, avec le certificat médical."),
        h("h2", {}, "Factures et données"),
        ...q("Payer une facture",
             "« Mes factures » : cochez les factures et payez en ligne, "
             + "ou demandez le prélèvement automatique."),
        ...q("Mes données personnelles",
             "Le tableau de bord propose « Télécharger mes données » : "
             + "un fichier JSON avec tout votre dossier."),
        h("h2", {}, "Nous contacter"),
        contact());
}
