/*
 * format.js -- French wording of dates, instants and amounts, and calendar
 * arithmetic on plain days ("YYYY-MM-DD").
 *
 * Days are computed in UTC so that a DST change never shifts them; instants
 * (RFC 3339) are always shown in Europe/Paris, whatever the device's zone.
 */

const TZ = "Europe/Paris";

const fmtInstant = new Intl.DateTimeFormat("fr-FR", {
    timeZone: TZ, weekday: "long", day: "numeric", month: "long",
    year: "numeric", hour: "2-digit", minute: "2-digit",
});
const fmtTime = new Intl.DateTimeFormat("fr-FR", {
    timeZone: TZ, hour: "2-digit", minute: "2-digit",
});
const fmtParisDay = new Intl.DateTimeFormat("en-CA", {
    timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
});
const fmtDayLong = new Intl.DateTimeFormat("fr-FR", {
    timeZone: "UTC", weekday: "long", day: "numeric", month: "long",
    year: "numeric",
});
const fmtDayShort = new Intl.DateTimeFormat("fr-FR", {
    timeZone: "UTC", weekday: "short", day: "numeric", month: "short",
});
const fmtDayYear = new Intl.DateTimeFormat("fr-FR", {
    timeZone: "UTC", day: "numeric", month: "short", year: "numeric",
});
const fmtInstantShort = new Intl.DateTimeFormat("fr-FR", {
    timeZone: TZ, day: "numeric", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit",
});
const fmtMonth = new Intl.DateTimeFormat("fr-FR", {
    timeZone: "UTC", month: "long", year: "numeric",
});
const fmtEuro = new Intl.NumberFormat("fr-FR", {
    style: "currency", currency: "EUR",
});

export const WEEKDAYS = ["lundi", "mardi", "mercredi", "jeudi", "vendredi",
                         "samedi", "dimanche"];

export function euros(cents) {
    /* Intl puts a narrow no-break space before "€": keep it. */
    return fmtEuro.format((Number(cents) || 0) / 100);
}

export function instant(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : fmtInstant.format(d);
}

/* "23 nov. 2026, 22:29" (Europe/Paris). */
export function instantShort(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso)
                                     : fmtInstantShort.format(d);
}

export function time(iso) {
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? "" : fmtTime.format(d);
}

export function dayDate(day) {
    return new Date(day + "T00:00:00Z");
}

export function dayLong(day) {
    return fmtDayLong.format(dayDate(day));
}

export function dayNum(day) {
    return day.slice(8, 10) + "/" + day.slice(5, 7) + "/" + day.slice(0, 4);
}

/* "12 févr. 2027" */
export function dayYear(day) {
    return fmtDayYear.format(dayDate(day));
}

export function dayShort(day) {
    return fmtDayShort.format(dayDate(day));
}

export function monthName(day) {
    return fmtMonth.format(dayDate(day));
}

/* Today in Europe/Paris, as "YYYY-MM-DD". */
export function todayParis(nowMs) {
    return fmtParisDay.format(new Date(nowMs === undefined ? Date.now()
                                                           : nowMs));
}

export function addDays(day, n) {
    const d = dayDate(day);
    d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
}

/* 0 = Monday ... 6 = Sunday. */
export function weekday(day) {
    return (dayDate(day).getUTCDay() + 6) % 7;
}

export function mondayOf(day) {
    return addDays(day, -weekday(day));
}

export function lastOfMonth(day) {
    const d = dayDate(day.slice(0, 8) + "01");
    d.setUTCMonth(d.getUTCMonth() + 1);
    d.setUTCDate(0);
    return d.toISOString().slice(0, 10);
}

export function daysBetween(a, b) {
    return Math.round((dayDate(b) - dayDate(a)) / 86400000);
}

/* Years of age on a given day. */
export function ageOn(birth, day) {
    let age = Number(day.slice(0, 4)) - Number(birth.slice(0, 4));
    if (day.slice(5) < birth.slice(5)) {
        age--;
    }
    return age;
}

/* "2 j 03:04:05" style countdown text for a number of milliseconds. */
export function countdown(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    const pad = (x) => String(x).padStart(2, "0");
    const hms = pad(h) + " h " + pad(m) + " min " + pad(s % 60) + " s";
    return d > 0 ? d + " j " + hms : hms;
}


/* French public holidays of a year, "YYYY-MM-DD" -> name (Easter by the
 * anonymous Gregorian algorithm; the engine's calendars skip the same
 * days). */
const holidayCache = new Map();

function holidaysOf(year) {
    if (holidayCache.has(year)) {
        return holidayCache.get(year);
    }
    const a = year % 19, b = Math.floor(year / 100), c = year % 100;
    const d = Math.floor(b / 4), e = b % 4;
    const g = Math.floor((8 * b + 13) / 25);
    const hh = (19 * a + b - d - g + 15) % 30;
    const i = Math.floor(c / 4), k = c % 4;
    const l = (32 + 2 * e + 2 * i - hh - k) % 7;
    const m = Math.floor((a + 11 * hh + 19 * l) / 433);
    const month = Math.floor((hh + l - 7 * m + 90) / 25);
    const day = (hh + l - 7 * m + 33 * month + 19) % 32;
    const easter = year + "-" + String(month).padStart(2, "0") + "-"
                   + String(day).padStart(2, "0");
    const map = new Map([
        ["01-01", "Jour de l'an"], ["05-01", "Fête du travail"],
        ["05-08", "Victoire 1945"], ["07-14", "Fête nationale"],
        ["08-15", "Assomption"], ["11-01", "Toussaint"],
        ["11-11", "Armistice"], ["12-25", "Noël"],
    ].map(([md, name]) => [year + "-" + md, name]));
    map.set(addDays(easter, 1), "Lundi de Pâques");
    map.set(addDays(easter, 39), "Ascension");
    map.set(addDays(easter, 50), "Lundi de Pentecôte");
    holidayCache.set(year, map);
    return map;
}

/* The name of the public holiday on day, or null. */
export function holiday(day) {
    return holidaysOf(Number(day.slice(0, 4))).get(day) || null;
}
