#!/usr/bin/python3
"""check-docs.py -- the documentation says what the code does (issue 17).

Each check compares what the code has with what one document says, in both
directions, and prints TAP (one "ok"/"not ok" line per check, the
differences under it as "#" lines naming the file and line where a thing
was found):

  error codes      every code the code can answer (docs/errors.md, first
                   table) against the codes found in the C of ngx_module/,
                   engine/src/ and office/, and in the JSON bodies of
                   lua-free-config/*.conf
  refusal reasons  every per-cell reason of a booking answer (docs/errors.md,
                   the table whose column is "reason") against the engine's
                   table of reasons (gch_reasons[] of engine/src/alloc.c,
                   the names of gch_reason_t, which /metrics counts too)
  one table        no reason is assigned as a literal outside that table
  directives       docs/directives.md's "### guichet_*" sections against the
                   module's ngx_command_t table
  variables        docs/directives.md's "### $guichet_*" sections against the
                   module's other ngx_string("guichet_*") names
  production.conf  every directive and variable of the module appears in
                   lua-free-config/production.conf
  worker settings  docs/worker.md's "### name" sections under "## Settings"
                   against the setting table of backend/conf.c
  worker example   every worker setting appears in
                   worker/guichet-worker.conf.example
  schema           every file of sql/migrations/ and every table it creates
                   is named in docs/worker.md's "## Schema" section

How codes are found in C (comments removed, adjacent string literals
joined, so a code split over lines or calls is still seen):
  * helpers: every function defined with a parameter named "code" and one
    named "status" (ngx_http_guichet_error, gcho_error, gch_error_body,
    ...); at each call, the string literals of the "code" argument
    (`err.code ? err.code : "bad_json"` gives bad_json).  An argument with
    no literal must be the caller's own "code" parameter (forwarding) or a
    ".code"/"->code" member (filled from the tables below); anything else
    is reported as a code the check cannot read;
  * tables: arrays of a struct type with "status" and "code" members
    (gch_errors[] of engine/src/alloc.c): the member "code" of each entry;
  * assignments of a literal to a ".code"/"->code" member.
Reasons: the string arrays whose name ends in "reasons" (the engine's
gch_reasons[]), and literals assigned to a "reason" member (there should
be none: each must be in the table).

Usage: scripts/check-docs.py [-v]   (exit 1 when a check fails; -v lists
what was found).  Run by scripts/lint.sh (make lint) and by tests/run-all
(suite "docs").
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CODE_DIRS = ("ngx_module", "engine/src", "office")

TOKEN = re.compile(r"""
    (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<pp>^[ \t]*\#(?:[^\n\\]|\\.)*)
  | (?P<str>"(?:\\.|[^"\\\n])*")
  | (?P<chr>'(?:\\.|[^'\\\n])*')
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>\.?\d(?:[\w.]|[eEpP][+-])*)
  | (?P<ws>\s+)
  | (?P<op>->|\+\+|--|<<=|>>=|<<|>>|[-+*/%&|^!=<>]=|&&|\|\||.)
""", re.S | re.X | re.M)


class Tok:
    __slots__ = ("kind", "text", "value", "path", "line")

    def __init__(self, kind, text, value, path, line):
        self.kind, self.text, self.value = kind, text, value
        self.path, self.line = path, line

    def where(self):
        return "%s:%d" % (self.path, self.line)


def c_unescape(s):
    return bytes(s, "utf-8").decode("unicode_escape")


def tokenize(path):
    """Tokens of a C file: no comments, no preprocessor lines, adjacent
    string literals joined into one."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        src = f.read()
    out = []
    line = 1
    for m in TOKEN.finditer(src):
        kind, text = m.lastgroup, m.group()
        if kind == "str":
            value = c_unescape(text[1:-1])
            if out and out[-1].kind == "str":
                out[-1].value += value
            else:
                out.append(Tok("str", text, value, path, line))
        elif kind in ("id", "num", "chr", "op"):
            out.append(Tok(kind, text, text, path, line))
        line += text.count("\n")
    return out


def match_paren(toks, i):
    """Index of the bracket closing toks[i] ( "(" "[" or "{" )."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    opening, closing = toks[i].text, pairs[toks[i].text]
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j].text
        if toks[j].kind != "op":
            continue
        if t == opening:
            depth += 1
        elif t == closing:
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def split_args(toks, i, j):
    """The comma-separated parts of toks[i+1:j] at bracket depth 0."""
    args, cur, depth = [], [], 0
    for t in toks[i + 1:j]:
        if t.kind == "op" and t.text in "([{":
            depth += 1
        elif t.kind == "op" and t.text in ")]}":
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text == ",":
            args.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur or args:
        args.append(cur)
    return args


def last_id(part):
    ids = [t.text for t in part if t.kind == "id"]
    return ids[-1] if ids else None


def functions(toks):
    """{name: (params, body_start, body_end)} of the function definitions
    (a name, its parameter list, then a body) at file level."""
    found = {}
    depth = 0
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.kind == "op" and t.text == "{":
            depth += 1
        elif t.kind == "op" and t.text == "}":
            depth -= 1
        elif (depth == 0 and t.kind == "id" and i + 1 < len(toks)
              and toks[i + 1].text == "("):
            j = match_paren(toks, i + 1)
            if j + 1 < len(toks) and toks[j + 1].text == "{":
                params = [last_id(p) for p in split_args(toks, i + 1, j)]
                end = match_paren(toks, j + 1)
                found[t.text] = (params, j + 1, end)
                i = end + 1
                continue
            i = j
        i += 1
    return found


def struct_members(toks):
    """{typedef name: [member names]} of `typedef struct {...} name;`."""
    found = {}
    for i, t in enumerate(toks):
        if t.text == "typedef" and i + 2 < len(toks) and \
                toks[i + 1].text == "struct":
            k = i + 2
            if toks[k].kind == "id":
                k += 1
            if toks[k].text != "{":
                continue
            end = match_paren(toks, k)
            members = [last_id(p) for p in
                       split_semis(toks[k + 1:end])]
            if end + 1 < len(toks) and toks[end + 1].kind == "id":
                found[toks[end + 1].text] = members
    return found


def split_semis(toks):
    parts, cur = [], []
    for t in toks:
        if t.text == ";":
            parts.append([x for x in cur if x.text not in ("[", "]")
                          and x.kind != "num"])
            cur = []
        else:
            cur.append(t)
    return parts


def strings_of(part):
    return [t for t in part if t.kind == "str"]


class Found:
    """name -> first place it was seen ("file:line")."""

    def __init__(self):
        self.where = {}

    def add(self, name, where):
        self.where.setdefault(name, where)

    def names(self):
        return set(self.where)


def c_files():
    for d in CODE_DIRS:
        full = os.path.join(ROOT, d)
        for name in sorted(os.listdir(full)):
            if name.endswith((".c", ".h")):
                yield os.path.join(d, name)


def scan_code(verbose):
    codes, reasons, table_reasons = Found(), Found(), Found()
    unreadable = []
    files = {p: tokenize(p) for p in c_files()}

    helpers, structs = {}, {}
    for path, toks in files.items():
        for name, (params, _, _) in functions(toks).items():
            if "code" in params and "status" in params:
                helpers[name] = params.index("code")
        structs.update(struct_members(toks))
    for name, members in list(structs.items()):
        if not ("code" in members and "status" in members):
            del structs[name]
    if verbose:
        print("# helpers (argument of the code): %s" %
              ", ".join("%s(#%d)" % kv for kv in sorted(helpers.items())))
        print("# error tables of types: %s" % ", ".join(sorted(structs)))

    for path, toks in files.items():
        funcs = functions(toks)
        spans = [(b, e, params) for params, b, e in funcs.values()]

        def params_at(i):
            for b, e, params in spans:
                if b <= i <= e:
                    return params
            return []

        for i, t in enumerate(toks):
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            prev = toks[i - 1] if i > 0 else None
            # calls of a helper (not its definition or declaration)
            if (t.kind == "id" and t.text in helpers and nxt is not None
                    and nxt.text == "(" and params_at(i)):
                j = match_paren(toks, i + 1)
                args = split_args(toks, i + 1, j)
                k = helpers[t.text]
                if k >= len(args):
                    continue
                arg = args[k]
                lits = strings_of(arg)
                for s in lits:
                    codes.add(s.value, s.where())
                if lits:
                    continue
                texts = [x.text for x in arg]
                if texts == ["code"] and "code" in params_at(i):
                    continue            # forwards its own parameter
                if len(texts) >= 3 and texts[-1] == "code" and \
                        texts[-2] in (".", "->"):
                    continue            # a gch_error_t filled elsewhere
                unreadable.append("%s: %s(): code argument `%s`"
                                  % (t.where(), t.text, " ".join(texts)))
            # tables of an error struct: NAME x[] = { {...}, ... };
            if t.kind == "id" and t.text in structs and nxt is not None \
                    and nxt.kind == "id":
                k = i + 2
                while k < len(toks) and toks[k].text not in ("=", ";"):
                    k += 1
                if k + 1 < len(toks) and toks[k].text == "=" and \
                        toks[k + 1].text == "{":
                    end = match_paren(toks, k + 1)
                    idx = structs[t.text].index("code")
                    for entry in split_args(toks, k + 1, end):
                        if entry and entry[0].text == "{":
                            fields = split_args(entry, 0, len(entry) - 1)
                            if idx < len(fields):
                                for s in strings_of(fields[idx]):
                                    codes.add(s.value, s.where())
            # member = "literal" (also through a ternary)
            if t.kind == "id" and t.text in ("code", "reason") and \
                    prev is not None and prev.text in (".", "->") and \
                    nxt is not None and nxt.text == "=":
                k = i + 2
                while k < len(toks) and toks[k].text != ";":
                    if toks[k].kind == "str":
                        (codes if t.text == "code" else reasons).add(
                            toks[k].value, toks[k].where())
                    k += 1
            # const char *xxx_reasons[] = { "a", "b", NULL };
            if t.kind == "id" and t.text.endswith("reasons") and \
                    nxt is not None and nxt.text == "[":
                k = i + 1
                while k < len(toks) and toks[k].text not in ("=", ";"):
                    k += 1
                if k + 1 < len(toks) and toks[k].text == "=" and \
                        toks[k + 1].text == "{":
                    end = match_paren(toks, k + 1)
                    for s in strings_of(toks[k + 1:end]):
                        table_reasons.add(s.value, s.where())

    # the JSON bodies nginx answers itself (api-errors.conf, ...)
    conf_dir = os.path.join(ROOT, "lua-free-config")
    for name in sorted(os.listdir(conf_dir)):
        if not name.endswith(".conf"):
            continue
        path = "lua-free-config/" + name
        with open(os.path.join(conf_dir, name), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.lstrip().startswith("#"):
                    continue
                for m in re.finditer(r'"code"\s*:\s*"([^"]+)"', line):
                    codes.add(m.group(1), "%s:%d" % (path, n))
    return codes, reasons, table_reasons, unreadable


def doc_table_column(path, column):
    """Backquoted values of the column named `column` of every Markdown
    table of path: {value: "path:line"}."""
    found = Found()
    header = None
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("|"):
                header = None
                continue
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
                continue
            if column not in header or set(line) <= set("|-: "):
                continue
            cell = cells[header.index(column)]
            for m in re.finditer(r"`([^`]+)`", cell):
                found.add(m.group(1), "%s:%d" % (path, n))
    return found


def doc_headings(path, prefix, section=None):
    """Names of the "### " headings of path (several names separated by
    commas allowed), only under the "## section" heading when given."""
    found = Found()
    inside = section is None
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("## "):
                inside = section is None or line[3:].strip() == section
            elif line.startswith("### ") and inside:
                for name in line[4:].split(","):
                    name = name.strip().strip("`")
                    if name.startswith(prefix):
                        found.add(name[len(prefix):] if prefix == "$"
                                  else name, "%s:%d" % (path, n))
    return found


def section_text(path, section):
    """The text of path under "## section", up to the next "## "."""
    out, inside = [], False
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                inside = line[3:].strip() == section
            elif inside:
                out.append(line)
    return "".join(out)


def module_names():
    """(directives, variables): the ngx_command_t table's names, and the
    other ngx_string("guichet_*") of the module."""
    directives, variables = Found(), Found()
    for path in c_files():
        if not path.startswith("ngx_module/"):
            continue
        toks = tokenize(path)
        in_table = set()
        for i, t in enumerate(toks):
            if t.text == "ngx_command_t" and i + 2 < len(toks) and \
                    toks[i + 1].kind == "id" and toks[i + 2].text == "[":
                k = i + 2
                while toks[k].text not in ("=", ";"):
                    k += 1
                if toks[k].text == "=":
                    end = match_paren(toks, k + 1)
                    in_table.update(range(k + 1, end))
        for i, t in enumerate(toks):
            if t.text == "ngx_string" and toks[i + 1].text == "(" and \
                    toks[i + 2].kind == "str" and \
                    toks[i + 2].value.startswith("guichet_"):
                s = toks[i + 2]
                (directives if i in in_table else variables).add(
                    s.value, s.where())
    return directives, variables


def worker_settings():
    found = Found()
    path = "backend/conf.c"
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            m = re.match(r'\s*\{\s*"([a-z0-9_]+)",\s*GCHB_', line)
            if m:
                found.add(m.group(1), "%s:%d" % (path, n))
    return found


def words_of(path, strip_comments):
    """The words of path; with strip_comments, comments are left out
    except a commented-out directive ("# guichet_x value;", an example
    the operator completes, e.g. a password)."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        text = f.read()
    if strip_comments:
        text = re.sub(r"#(?![ \t]*[a-z_]+[ \t][^\n]*;[ \t]*$)[^\n]*", "",
                      text, flags=re.M)
    return set(re.findall(r"[$A-Za-z0-9_]+", text))


class Report:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def check(self, title, problems):
        self.n += 1
        if problems:
            self.failed += 1
            print("not ok %d - %s" % (self.n, title))
            for p in problems:
                print("#   %s" % p)
        else:
            print("ok %d - %s" % (self.n, title))

    def both_ways(self, title, code, code_name, doc, doc_name):
        problems = []
        for name in sorted(code.names() - doc.names()):
            problems.append("%s (%s) is not in %s" %
                            (name, code.where[name], doc_name))
        for name in sorted(doc.names() - code.names()):
            problems.append("%s (%s) is not %s" %
                            (name, doc.where[name], code_name))
        self.check(title, problems)


def main():
    verbose = "-v" in sys.argv[1:]
    rep = Report()

    codes, reasons, table_reasons, unreadable = scan_code(verbose)
    doc_codes = doc_table_column("docs/errors.md", "code")
    doc_reasons = doc_table_column("docs/errors.md", "reason")
    if verbose:
        print("# codes in the code: %s" % " ".join(sorted(codes.names())))
        print("# reasons in the code: %s" %
              " ".join(sorted(reasons.names())))

    rep.both_ways("error codes: docs/errors.md = codes the code answers",
                  codes, "answered by any code (ngx_module/, engine/src/, "
                  "office/, lua-free-config/)",
                  doc_codes, "docs/errors.md (table 'code')")
    rep.check("error codes: every code argument is readable", unreadable)

    all_reasons = Found()
    for f in (reasons, table_reasons):
        for name, where in f.where.items():
            all_reasons.add(name, where)
    rep.both_ways("refusal reasons: docs/errors.md = reasons of the code",
                  all_reasons, "a reason of the engine (gch_reasons[])",
                  doc_reasons, "docs/errors.md (table 'reason')")
    rep.check("refusal reasons: one table (the engine's gch_reasons[]); "
              "none written as a literal elsewhere",
              ["%s: reason \"%s\" is not in the table" % (where, name)
               for name, where in sorted(reasons.where.items())
               if name not in table_reasons.where] +
              ([] if table_reasons.where else
               ["no table of reasons found (an array named *reasons)"]))

    directives, variables = module_names()
    rep.both_ways("directives: docs/directives.md = the module's "
                  "ngx_command_t table", directives,
                  "in the module's ngx_command_t table",
                  doc_headings("docs/directives.md", "guichet_"),
                  "docs/directives.md (### heading)")
    rep.both_ways("variables: docs/directives.md = the module's variables",
                  variables, "a variable of the module",
                  doc_headings("docs/directives.md", "$"),
                  "docs/directives.md (### $heading)")
    # production.conf and the files of lua-free-config/ it includes
    # (office.conf's proxy_set_header lines are production's too)
    prod = words_of("lua-free-config/production.conf", True)
    with open(os.path.join(ROOT, "lua-free-config/production.conf"),
              encoding="utf-8") as f:
        for inc in re.findall(r"^[ \t]*include[ \t]+@ROOT@/"
                              r"(lua-free-config/[A-Za-z0-9_.-]+);",
                              f.read(), flags=re.M):
            prod |= words_of(inc, True)
    rep.check("lua-free-config/production.conf (and what it includes) "
              "uses every directive and variable",
              ["%s (%s) is not in lua-free-config/production.conf" %
               (n, w) for n, w in sorted(directives.where.items())
               if n not in prod] +
              ["$%s (%s) is not in lua-free-config/production.conf" %
               (n, w) for n, w in sorted(variables.where.items())
               if "$" + n not in prod])

    settings = worker_settings()
    rep.both_ways("worker settings: docs/worker.md = backend/conf.c's table",
                  settings, "in backend/conf.c's setting table",
                  doc_headings("docs/worker.md", "", "Settings"),
                  "docs/worker.md (### heading under ## Settings)")
    example = words_of("worker/guichet-worker.conf.example", False)
    rep.check("worker/guichet-worker.conf.example names every setting",
              ["%s (%s) is not in worker/guichet-worker.conf.example" %
               (n, w) for n, w in sorted(settings.where.items())
               if n not in example])

    schema = section_text("docs/worker.md", "Schema")
    problems = []
    mig_dir = os.path.join(ROOT, "sql/migrations")
    for name in sorted(os.listdir(mig_dir)):
        if not name.endswith(".sql"):
            continue
        path = "sql/migrations/" + name
        if name not in schema:
            problems.append("%s is not named in docs/worker.md (## Schema)"
                            % path)
        with open(os.path.join(mig_dir, name), encoding="utf-8") as f:
            text = re.sub(r"--[^\n]*", "", f.read())
        for m in re.finditer(r"create\s+table\s+(?:if\s+not\s+exists\s+)?"
                             r"([a-z_][a-z0-9_]*)", text, re.I):
            if not re.search(r"`%s`" % re.escape(m.group(1)), schema):
                problems.append("table %s (%s) is not named in "
                                "docs/worker.md (## Schema)"
                                % (m.group(1), path))
    rep.check("schema: docs/worker.md names every migration and table",
              problems)

    print("1..%d" % rep.n)
    if rep.failed:
        print("# %d of %d checks failed" % (rep.failed, rep.n))
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
