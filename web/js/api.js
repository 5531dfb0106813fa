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

/* A file as the request body (uploads): its own Content-Type. */
export async function upload(path, file) {
    let res;
    try {
        res = await fetch(path, {
            method: "POST", credentials: "same-origin", cache: "no-store",
            headers: { Accept: "application/json",
                       "Content-Type": file.type
                                       || "application/octet-stream" },
            body: file,
        });
    } catch (e) {
        return unreachable();
    }
    return answer(res, (status) => status === 413
        ? "Ce fichier est trop volumineux." : failed(status));
}

export const get = (path) => call("GET", path);
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
