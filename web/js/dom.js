/*
 * dom.js -- a tiny element builder.  Text from the server always goes in as
 * text nodes (never innerHTML), so a child's name cannot inject markup.
 */

export function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false) {
            continue;
        }
        if (k.startsWith("on") && typeof v === "function") {
            el.addEventListener(k.slice(2), v);
        } else if (k === "class") {
            el.className = v;
        } else if (k === "dataset") {
            Object.assign(el.dataset, v);
        } else if (v === true) {
            el.setAttribute(k, "");
        } else {
            el.setAttribute(k, String(v));
        }
    }
    append(el, children);
    return el;
}

function append(el, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false) {
            continue;
        }
        if (Array.isArray(c)) {
            append(el, c);
        } else if (c instanceof Node) {
            el.appendChild(c);
        } else {
            el.appendChild(document.createTextNode(String(c)));
        }
    }
}

let uid = 0;
export function id(prefix) {
    uid += 1;
    return (prefix || "g") + "-" + uid;
}

/* Say something to screen-reader users without moving focus. */
export function announce(text) {
    const live = document.getElementById("annonce");
    if (live) {
        live.textContent = "";
        setTimeout(() => { live.textContent = text; }, 50);
    }
}

export function alertBox(message, kind) {
    return h("div", { class: kind || "alerte",
                      role: kind === "info" || kind === "succes"
                            ? "status" : "alert" }, message);
}

/*
 * A table that reads as cards on a phone (CSS .cartes, issue 22: prices and
 * buttons were off screen): each body cell gets its column's heading as
 * data-label, shown before it when the rows are stacked.
 */
export function cards(wrapper) {
    wrapper.classList.add("cartes");
    const heads = Array.from(wrapper.querySelectorAll("thead th"),
                             (th) => th.textContent);
    for (const tr of wrapper.querySelectorAll("tbody tr")) {
        Array.from(tr.children).forEach((td, i) => {
            if (heads[i] && td.tagName === "TD") {
                td.dataset.label = heads[i];
            }
        });
    }
    return wrapper;
}

/*
 * The menu that folds on a phone (CSS .bouton-menu, issue 22: 11 items took
 * 234 of 800 px): the button opens and closes it; a new page and Escape
 * close it.
 */
export function foldingMenu(nav) {
    const button = nav.querySelector(".bouton-menu");
    const fold = () => button.setAttribute("aria-expanded", "false");
    button.addEventListener("click", () => {
        button.setAttribute("aria-expanded", String(
            button.getAttribute("aria-expanded") !== "true"));
    });
    nav.addEventListener("keydown", (ev) => {
        if (ev.key === "Escape"
            && button.getAttribute("aria-expanded") === "true") {
            fold();
            button.focus();
        }
    });
    window.addEventListener("hashchange", fold);
}
