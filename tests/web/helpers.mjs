/*
 * helpers.mjs -- what the browser tests share (parcours22, demo, agent22,
 * annee-famille, espace-famille, ...): the stack, axe, screenshots, the
 * family's login; ownStack(), the setup of a file on a stack of its own
 * (premiere, entourage, situation, coordonnees, infos, pieces).
 */

import { before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { AxeBuilder } from "@axe-core/playwright";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../..");
export const OUT = path.resolve(HERE, "../out/web");
export const PY = "/usr/bin/python3";
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const ARGS = ["--no-sandbox", "--headless", "--disable-gpu",
                     "--disable-quic", "--lang=fr-FR", "--no-first-run",
                     "--disable-background-networking",
                     "--disable-component-update", "--disable-sync"];

/* Waits until every nginx worker of the stack at base holds the same
 * catalogue generation of each town (/metrics'
 * guichet_catalogue_generation): a change one answer showed (its worker's
 * generation or an older one) is then every worker's.  Each worker
 * reloads on its own every guichet_catalogue_refresh, and the next
 * request may reach either. */
export async function everyWorker(base) {
    const line = new RegExp("^guichet_catalogue_generation\\{town=\"([^\"]*)\","
                            + "worker=\"\\d+\",pid=\"\\d+\"\\} (\\d+)$", "gm");
    for (;;) {
        const r = await fetch(base + "/metrics");
        assert.equal(r.status, 200, "GET /metrics");
        const gens = new Map();
        for (const m of (await r.text()).matchAll(line)) {
            gens.set(m[1], (gens.get(m[1]) || []).concat([Number(m[2])]));
        }
        assert.ok(gens.size > 0, "no guichet_catalogue_generation");
        if ([...gens.values()].every((g) => Math.min(...g) === Math.max(...g)))
        {
            return;
        }
        await new Promise((ok) => setTimeout(ok, 100));
    }
}

/* tests/integration/stack.py serve FILE: {proc, base, conf} once it
 * prints its URL and CONF. */
export async function startStack(file) {
    const proc = spawn(PY, [path.join(ROOT, "tests/integration/stack.py"),
                            "serve", file],
                       { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let err = "";
    proc.stderr.on("data", (d) => { err += d; });
    return new Promise((ok, ko) => {
        let out = "";
        proc.stdout.on("data", (d) => {
            out += d;
            const u = /^URL (\S+)$/m.exec(out);
            const c = /^CONF (\S+)$/m.exec(out);
            if (u && c) {
                ok({ proc, base: u[1].replace(/\/+$/, ""), conf: c[1] });
            }
        });
        proc.on("exit", (c) => ko(new Error("stack.py exited " + c + ": "
                                            + err.slice(-2000))));
    });
}

export async function stopStack(s) {
    if (s && s.proc.exitCode === null) {
        const gone = new Promise((ok) => s.proc.on("exit", ok));
        s.proc.kill("SIGTERM");
        await gone;
    }
}

export async function shot(name, p) {
    fs.mkdirSync(OUT, { recursive: true });
    await p.screenshot({ path: path.join(OUT, name + ".png"),
                         fullPage: true });
}

/* No serious or critical axe violation on the page as it is now. */
export async function axe(name, p) {
    const r = await new AxeBuilder({ page: p })
        .withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"])
        .analyze();
    const bad = r.violations.filter((v) => v.impact === "serious"
                                           || v.impact === "critical");
    assert.deepEqual(bad.map((v) => v.id + ": " + v.help + " — "
                                    + v.nodes.slice(0, 3).map((n) =>
                                        n.target.join(" ")).join(", ")),
                     [], "axe on " + name);
}

export async function login(p, base, who, password) {
    await p.goto(base + "/#/connexion");
    await p.waitForSelector("#identifiant");
    await p.fill("#identifiant", who);
    await p.fill("#motdepasse", password);
    await p.click("form button[type=submit]");
    await p.waitForSelector("h1:has-text('Tableau de bord')");
}

/*
 * A file of browser tests on a stack of its own: registers before() and
 * after() and returns what its tests use.  before() writes the town in a
 * temp dir (town: a script of tests/web run with args, or the town file's
 * object; null: a stack without a town), starts the stack, adds
 * each staff login ({login, role, name, password}) with guichetctl and
 * runs setup(web) when given, then launches chromium; after() undoes
 * all of it.  ready: build/ has
 * guichet-office and guichetctl (the file's tests skip otherwise);
 * stack once started; newPage(width, options) a French page of that
 * width in a new context (options for it), its errors in errors;
 * staffPage(login, password, width, options) such a page with the staff
 * login logged in the back office;
 * shot(name, p) tests/out/web/<prefix>-<name>.png; ctl(...args)
 * guichetctl on the stack, its output; sql(query) psql on its database.
 */
export function ownStack(prefix, town, { args = [], staff = [],
                                        setup = null } = {}) {
    const ctlPath = path.join(ROOT, "build", "guichetctl");
    const web = {
        ready: fs.existsSync(path.join(ROOT, "build", "guichet-office"))
               && fs.existsSync(ctlPath),
        stack: null,
        browser: null,
        errors: [],
        tmp: null,
    };
    web.newPage = async (width, options = {}) => {
        const ctx = await web.browser.newContext({
            locale: "fr-FR", viewport: { width, height: 900 }, ...options });
        const p = await ctx.newPage();
        p.on("pageerror", (e) => web.errors.push(e.message));
        return p;
    };
    web.staffPage = async (login, password, width, options = {}) => {
        const p = await web.newPage(width, options);
        await p.goto(web.stack.base + "/agent/#/connexion");
        await p.waitForSelector("#ag-identifiant");
        await p.fill("#ag-identifiant", login);
        await p.fill("#ag-motdepasse", password);
        await p.click("form button[type=submit]");
        await p.waitForSelector("h1:has-text('Inscriptions à traiter')");
        return p;
    };
    web.shot = (name, p) => shot(prefix + "-" + name, p);
    web.ctl = (...a) => execFileSync(ctlPath, ["-c", web.stack.conf, ...a],
                                     { cwd: ROOT,
                                       stdio: ["pipe", "pipe", "pipe"] })
        .toString();
    web.sql = (query) => {
        const conf = fs.readFileSync(web.stack.conf, "utf8");
        const info = /^postgres\s*=\s*"([^"]*)"/m.exec(conf)[1];
        return execFileSync("psql", ["-X", "-q", "-A", "-t", "-d", info,
                                     "-c", query]).toString().trim();
    };
    before(async () => {
        if (!web.ready) {
            return;
        }
        let file = "--no-town";
        if (town !== null) {
            web.tmp = fs.mkdtempSync(path.join(os.tmpdir(),
                                               "guichet-" + prefix + "-"));
            file = path.join(web.tmp, "town.json");
            if (typeof town === "string") {
                execFileSync(PY, [path.join(HERE, town), ...args, file]);
            } else {
                fs.writeFileSync(file, JSON.stringify(town));
            }
        }
        web.stack = await startStack(file);
        for (const s of staff) {
            execFileSync(ctlPath, ["-c", web.stack.conf, "staff-add",
                                   s.login, s.role, s.name],
                         { cwd: ROOT, input: s.password + "\n",
                           stdio: ["pipe", "pipe", "pipe"] });
        }
        if (setup) {
            await setup(web);
        }
        web.browser = await chromium.launch({ executablePath: CHROMIUM,
                                              args: ARGS });
    });
    after(async () => {
        await web.browser?.close();
        await stopStack(web.stack);
        if (web.tmp) {
            fs.rmSync(web.tmp, { recursive: true, force: true });
        }
    });
    return web;
}
