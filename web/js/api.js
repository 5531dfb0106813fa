/*
 * api.js -- the website's only door to Guichet: same-origin fetch of the
 * /api/ endpoints of /work/shared/API.md.
 *
 * Every call resolves to {ok, status, data, error, retryAfter, headers};
 * it never throws for HTTP errors.  A network failure resolves with
 * status 0 and error.code "network".  Error bodies follow API.md
 * ({"error": {"code", "message"}}); their French message is shown as is.
 * The session cookie is HttpOnly: the browser sends it (credentials
 * 'same-origin'), and adds Origin to every state-changing request itself.
 */

let clockOffsetMs = 0;   /* server clock minus local clock, from Date */

const NETWORK_MESSAGE =
    "Connexion au serveur impossible. Vérifiez votre accès à Internet "
    + "puis réessayez.";

function parseRetryAfter(value) {
    if (!value) {
        return null;
    }
    const n = Number(value);
    if (Number.isFinite(n)) {
        return Math.max(0, n);
    }
    const t = Date.parse(value);
    return Number.isNaN(t) ? null : Math.max(0, (t - Date.now()) / 1000);
}

function noteServerClock(res) {
    const d = res.headers.get("Date");
    const t = d ? Date.parse(d) : NaN;
    if (!Number.isNaN(t)) {
        /* Date has a one-second resolution: keep the offset only when it
         * says more than that, so a correct local clock stays untouched. */
        const off = t + 500 - Date.now();
        clockOffsetMs = Math.abs(off) > 1500 ? off : 0;
    }
}

/* Now, on the server's clock (used by the opening countdown). */
export function serverNow() {
    return Date.now() + clockOffsetMs;
}

/*
 * The answer of a fetch as {ok, status, data, error, retryAfter, headers}:
 * a JSON body read when there is one, the error of the body or else a
 * French one (fallback(status)).
 */
async function answer(res, fallback) {
    let data = null;
    const type = res.headers.get("Content-Type") || "";
    if (res.status !== 204 && type.includes("json")) {
        try {
            data = await res.json();
        } catch (e) {
            data = null;
        }
    }

    const out = { ok: res.ok, status: res.status, data, headers: res.headers,
                  retryAfter: parseRetryAfter(res.headers.get("Retry-After")),
                  error: null };
    if (!res.ok) {
        out.error = (data && data.error) || { code: "http_" + res.status,
                                              message: fallback(res.status) };
        if (!out.error.message) {
            out.error.message = "Erreur " + res.status + ".";
        }
    }
    return out;
}

const failed = (status) => "Le serveur a répondu par une erreur (" + status
                           + "). Réessayez dans un instant.";

const unreachable = () => ({ ok: false, status: 0, data: null,
                             retryAfter: null, headers: null,
                             error: { code: "network",
                                      message: NETWORK_MESSAGE } });

/*
 * One API call.  opts (optional): credentials ("same-origin" by default,
 * the family's session cookie; the back office sends "omit") and bearer
 * (a token sent as Authorization: Bearer).
 */
export async function call(method, path, body, headers, opts) {
    const o = opts || {};
    const init = {
        method,
        credentials: o.credentials || "same-origin",
        cache: "no-store",
        headers: Object.assign({ Accept: "application/json" }, headers || {}),
    };
    if (o.bearer) {
        init.headers.Authorization = "Bearer " + o.bearer;
    }
    if (body !== undefined) {
        init.headers["Content-Type"] = "application/json";
        init.body = JSON.stringify(body);
    }

    let res;
    try {
        res = await fetch(path, init);
    } catch (e) {
        return unreachable();
    }

    noteServerClock(res);
    return answer(res, failed);
}

/* True when the endpoint does not exist (yet) on this server. */
export function isMissing(r) {
    return r.status === 404 || r.status === 405 || r.status === 501;
}

/*
 * A file as the request body (uploads): its own Content-Type.  Sent with
 * XMLHttpRequest so that onProgress(fraction) can show how far it is.
 */
export function upload(path, file, onProgress) {
    return new Promise((done) => {
        const x = new XMLHttpRequest();
        x.open("POST", path);
        x.withCredentials = true;
        x.responseType = "arraybuffer";
        x.setRequestHeader("Accept", "application/json");
        x.setRequestHeader("Content-Type", file.type
                                           || "application/octet-stream");
        if (onProgress) {
            x.upload.addEventListener("progress", (ev) => {
                if (ev.lengthComputable && ev.total > 0) {
                    onProgress(ev.loaded / ev.total);
                }
            });
        }
        x.addEventListener("error", () => done(unreachable()));
        x.addEventListener("abort", () => done(unreachable()));
        x.addEventListener("load", () => {
            const headers = new Headers();
            for (const line of x.getAllResponseHeaders().split("\r\n")) {
                const i = line.indexOf(":");
                if (i > 0) {
                    headers.append(line.slice(0, i).trim(),
                                   line.slice(i + 1).trim());
                }
            }
            const res = new Response(x.status === 204 || x.status === 304
                                     ? null : x.response,
                                     { status: x.status, headers });
            noteServerClock(res);
            done(answer(res, (status) => status === 413
                ? "Ce fichier est trop volumineux." : failed(status)));
        });
        x.send(file);
    });
}

export const get = (path) => call("GET", path);

const SPAN_DAYS = 92;       /* the API's longest from..to */
const SPAN_MAX = 8;         /* windows: about two years */

function plusDays(day, n) {
    const d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
}

/*
 * GET path?from=..&to=.. over any span: asked 92 days at a time, the lists
 * under key put together (r.list), their total_cents added up (r.total_cents,
 * null when the answers have none).  A span ending before it starts, or
 * longer than two years, is answered in French without asking.
 */
export async function getSpan(path, from, to, key) {
    const bad = (message) => ({ ok: false, status: 400, data: null,
                                error: { code: "bad_span", message } });
    if (!/^\d{4}-\d{2}-\d{2}$/.test(from || "")
        || !/^\d{4}-\d{2}-\d{2}$/.test(to || "")) {
        return bad("Choisissez les deux dates de la période.");
    }
    if (to < from) {
        return bad("La fin de la période doit suivre son début.");
    }
    const sep = path.includes("?") ? "&" : "?";
    const list = [];
    let total = 0;
    let r = null;
    for (let a = from, n = 0; a <= to; a = plusDays(a, SPAN_DAYS + 1), n++) {
        if (n === SPAN_MAX) {
            return bad("Choisissez une période de deux ans au plus.");
        }
        const b = plusDays(a, SPAN_DAYS) < to ? plusDays(a, SPAN_DAYS) : to;
        r = await get(path + sep + "from=" + a + "&to=" + b);
        if (!r.ok) {
            return r;
        }
        const d = r.data;
        total = total !== null && d && Number.isFinite(d.total_cents)
            ? total + d.total_cents : null;
        list.push(...(Array.isArray(d) ? d
                      : (d && Array.isArray(d[key]) ? d[key] : [])));
    }
    r.list = list;
    r.total_cents = total;
    return r;
}
export const post = (path, body, headers) => call("POST", path, body, headers);
export const put = (path, body) => call("PUT", path, body);
export const del = (path) => call("DELETE", path);

/* An Idempotency-Key: 32 characters of [a-f0-9], within [A-Za-z0-9_-]{1,64}. */
export function newIdempotencyKey() {
    if (globalThis.crypto && typeof crypto.randomUUID === "function") {
        return crypto.randomUUID().replace(/-/g, "");
    }
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/*
 * POST /api/bookings, safely retried.  The same key and body are sent again
 * after a network error, a 503 (after Retry-After) or a 409
 * request_in_progress, so that the server books at most once.
 * onWait(seconds, attempt) lets the page say what is happening.
 */
export async function submitBookings(items, key, onWait) {
    const body = { items };
    let r;
    for (let attempt = 1; attempt <= 6; attempt++) {
        r = await post("/api/bookings", body, { "Idempotency-Key": key });
        const again = r.status === 0 || r.status === 503
            || (r.status === 409 && r.error
                && r.error.code === "request_in_progress");
        if (!again || attempt === 6) {
            return r;
        }
        let wait = r.retryAfter != null ? r.retryAfter
                                        : Math.min(8, 2 ** (attempt - 1));
        wait = Math.min(wait, 30);
        if (onWait) {
            onWait(wait, attempt, r);
        }
        await sleep(wait * 1000 + Math.random() * 300);
    }
    return r;
}
