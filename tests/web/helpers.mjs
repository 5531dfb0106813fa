/*
 * helpers.mjs -- what the browser tests share (parcours22, demo, agent22,
 * annee-famille, espace-famille): the stack, axe, screenshots, the
 * family's login.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
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
