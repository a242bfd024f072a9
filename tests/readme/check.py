#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""tests/readme/check.py [--root DIR] [--bin BIN] README.md

Checks the README against the code it describes, reading each fact from where the code
keeps it (never from a copied list):
  keys      host/cfg.c's option tables (opts[], sopts[]) against the key tables of
            "## Configuration" and "## HTTP API" and the strategies YAML example, both
            ways, with each row's type and default; every dotted key the README names
  routes    host/api/server.c's routes[] against the curl examples of "## HTTP API",
            both ways; every `METHOD /path` the README names anywhere must be served
  suites    scripts/run-tests.sh's suites (its case labels) against the "## Tests" table
  scenarios scripts/vm.sh's ALL_SCENARIOS, each named in the README
  make      every `make TARGET` in inline code or a code block is a Makefile target
  paths     every repository path in inline code or a code block exists
  options   every option `BIN --help` prints is in "## Command line" (and those of
            `simulate --help` / `replay --help` in "## Simulator"); every option of the
            Command line table is one --help prints
  sections  the top-level sections the project's guide requires
  stats     the keys of a real --dry-run's stats: line and of the live format
            (host/sched_bpf.c) against the README's stats: paragraph, both ways
  exits     host/common.h's EXIT_* codes against the "Exit codes:" paragraph, both ways
  policy    the callbacks host/pol/*.c calls against the callback table of
            "## Writing a policy", the library's g.* against its list, both ways
Each item checked is one pass or one failure; a failure is a line starting "FAIL" that
names what is missing and where (README.md:LINE, or FILE:LINE in the code). Ends with
"N passed, N failed"; exit 1 when anything failed. Needs no root; reads README.md as a
path so tests/readme/run.sh can feed it mutated copies.
"""
import argparse
import glob
import os
import re
import shlex
import subprocess
import sys

REQUIRED_SECTIONS = ["The two commands", "Requirements", "Kernels", "Command line",
                     "Configuration", "HTTP API", "Writing a policy", "Simulator*",
                     "Tests", "Benchmarks", "Troubleshooting", "Installing as a service"]

# `make TARGET`s the README names that are not ours but a kernel tree's, each with the
# file that runs it (checked to contain it), so that an entry here cannot go stale.
FOREIGN_MAKE = {"allnoconfig": "scripts/kernel-src.sh"}

CFG_TYPES = {"OT_BOOL": "bool", "OT_U32": "u32", "OT_U64": "u64", "OT_I32": "int",
             "OT_STR": "string", "OT_PATH": "path"}
LIB = "policies/lib/gthulhu/sched.lua"
FILE_EXTS = {"c", "h", "lua", "sh", "yaml", "md", "json", "py", "mk", "txt", "in", "o"}
HTTP_METHODS = {"M_GET": "GET", "M_POST": "POST", "M_PUT": "PUT", "M_DELETE": "DELETE"}


class Checker:
    def __init__(self, readme, root, binary):
        self.readme = readme
        self.rname = os.path.relpath(readme) if not os.path.isabs(readme) else readme
        self.root = root
        self.binary = binary
        with open(readme, encoding="utf-8") as f:
            self.lines = f.read().split("\n")
        self.passed = 0
        self.failed = 0
        self._scan()

    # ---------------------------------------------------------------- reporting
    def ok(self, n=1):
        self.passed += n

    def fail(self, check, msg):
        self.failed += 1
        print(f"FAIL readme {check}: {msg}")

    def at(self, line):
        return f"{self.rname}:{line}"

    def src(self, rel):
        with open(os.path.join(self.root, rel), encoding="utf-8") as f:
            return f.read()

    # ---------------------------------------------------------------- README structure
    def _scan(self):
        """Sections (## headings outside code blocks), inline code spans, code block
        lines, table rows: each with its 1-based line number."""
        self.sections = []      # (title, first line, last line)
        self.spans = []         # (line, text) inline code
        self.fences = []        # list of blocks: [(line, text), ...], with the info string
        self.rows = []          # (line, [cells], is the separator row)
        fence = None
        for i, text in enumerate(self.lines, 1):
            if text.lstrip().startswith("```"):
                if fence is None:
                    fence = {"info": text.strip()[3:].strip(), "start": i, "lines": []}
                else:
                    self.fences.append(fence)
                    fence = None
                continue
            if fence is not None:
                fence["lines"].append((i, text))
                continue
            m = re.match(r"^## (.*)", text)
            if m:
                if self.sections:
                    t, s, _ = self.sections[-1]
                    self.sections[-1] = (t, s, i - 1)
                self.sections.append((m.group(1).strip(), i, len(self.lines)))
            for m in re.finditer(r"(`+)(.+?)\1", text):
                self.spans.append((i, m.group(2).strip()))
            if text.startswith("|"):
                body = re.sub(r"`[^`]*`", lambda m: m.group(0).replace("|", "\0"), text)
                cells = [c.replace("\0", "|").strip() for c in body.strip().strip("|").split("|")]
                self.rows.append((i, cells,
                                  all(re.fullmatch(r":?-+:?", c) for c in cells)))

    def section(self, prefix):
        for t, s, e in self.sections:
            if t == prefix or (prefix.endswith("*") and t.startswith(prefix[:-1])):
                return s, e
        return None

    def in_section(self, line, sec):
        return sec is not None and sec[0] <= line <= sec[1]

    def tables(self, sec):
        """Tables of a section: lists of rows (line, cells), header row first."""
        out, cur, last = [], [], None
        for line, cells, sep in self.rows:
            if not self.in_section(line, sec):
                continue
            if last is not None and line != last + 1:   # a table is consecutive lines
                out.append(cur)
                cur = []
            if not sep:
                cur.append((line, cells))
            last = line
        if cur:
            out.append(cur)
        return out

    def code_items(self):
        """Inline code spans and code block lines, as (line, text)."""
        items = list(self.spans)
        for f in self.fences:
            items.extend(f["lines"])
        return sorted(items)

    # ---------------------------------------------------------------- 8: sections
    def check_sections(self):
        for want in REQUIRED_SECTIONS:
            if self.section(want):
                self.ok()
            else:
                self.fail("sections", f"{self.rname} has no '## {want.rstrip('*')}' section "
                          "(the guide requires it)")

    # ---------------------------------------------------------------- 1: config keys
    def cfg_tables(self):
        """{table name: [(key, type, default, file line)]} from host/cfg.c."""
        text = self.src("host/cfg.c")
        out = {}
        for name in ("opts", "sopts"):
            m = re.search(r"static const struct opt " + name + r"\[\] = \{(.*?)\n\};", text, re.S)
            if not m:
                self.fail("keys", f"host/cfg.c: no option table '{name}[]' found")
                continue
            base = text[:m.start(1)].count("\n") + 1
            body = m.group(1)
            ents = []
            for e in re.finditer(r'\{\s*"([^"]+)",\s*(OT_\w+),(.*?)"((?:[^"\\]|\\.)*)"', body, re.S):
                ents.append((e.group(1), CFG_TYPES.get(e.group(2), e.group(2)),
                             e.group(4), base + body[:e.start()].count("\n")))
            if not ents:
                self.fail("keys", f"host/cfg.c: option table '{name}[]' parsed empty")
            out[name] = ents
        return out

    def check_keys(self):
        tabs = self.cfg_tables()
        opts, sopts = tabs.get("opts", []), tabs.get("sopts", [])
        keys = {k: (t, d, ln) for k, t, d, ln in opts}
        cfgtext = self.src("host/cfg.c")
        toplevel = set()
        if re.search(r'strcmp\(key, "strategies"\)', cfgtext):
            toplevel.add("strategies")      # the list of strategies, parsed by its own code
        sections = {k.split(".")[0] for k in keys}
        conf, api = self.section("Configuration"), self.section("HTTP API")

        # The reference: rows of the key tables in ## Configuration and ## HTTP API.
        ref = {}
        for sec in (conf, api):
            for table in self.tables(sec):
                head = [c.lower() for c in table[0][1]]
                if not head or head[0] != "key":
                    continue
                for line, cells in table[1:]:
                    for k in re.findall(r"`([^`]+)`", cells[0]):
                        ref.setdefault(k, (line, cells))
        for k, (t, d, ln) in keys.items():
            if k in ref:
                self.ok()
            else:
                self.fail("keys", f"config key `{k}` (host/cfg.c:{ln}) has no row in the README's "
                          "key tables (## Configuration, or ## HTTP API for api.*)")
        for k, (line, cells) in ref.items():
            if k in keys or k in toplevel:
                self.ok()
            elif k.endswith(".*") and any(x.startswith(k[:-1]) for x in keys):
                self.ok()
            else:
                self.fail("keys", f"{self.at(line)}: config key `{k}` is not in host/cfg.c's "
                          "option table (renamed or removed?)")
                continue
            if k not in keys or len(cells) < 3:
                continue
            t, d, ln = keys[k]
            rtype = cells[1].strip("` ")
            rdef = cells[2].strip()
            rdef = rdef[1:-1] if rdef.startswith("`") and rdef.endswith("`") else rdef
            rdef = "" if rdef == '""' else rdef
            if rtype != t:
                self.fail("keys", f"{self.at(line)}: `{k}` has type '{rtype}' in the README, "
                          f"'{t}' in host/cfg.c:{ln}")
            elif rdef != d:
                self.fail("keys", f"{self.at(line)}: `{k}` has default '{rdef}' in the README, "
                          f"'{d}' in host/cfg.c:{ln}")
            else:
                self.ok()

        # Strategy keys: the strategies YAML example of ## Configuration.
        block = None
        for f in self.fences:
            if self.in_section(f["start"], conf) and f["lines"] and \
                    f["lines"][0][1].strip() == "strategies:":
                block = f
                break
        skeys = {k: ln for k, t, d, ln in sopts}
        if block is None:
            self.fail("keys", f"{self.rname}: ## Configuration has no YAML example starting "
                      "with 'strategies:' (the strategy keys' reference)")
        else:
            seen = {}
            for line, text in block["lines"][1:]:
                m = re.match(r"\s*(?:-\s+)?([A-Za-z_][\w]*)\s*:", text)
                if m:
                    seen.setdefault(m.group(1), line)
            for k, ln in skeys.items():
                if k in seen:
                    self.ok()
                else:
                    self.fail("keys", f"strategy key `{k}` (host/cfg.c:{ln}) is not in the "
                              f"strategies example ({self.at(block['start'])})")
            for k, line in seen.items():
                if k in skeys:
                    self.ok()
                else:
                    self.fail("keys", f"{self.at(line)}: strategy key `{k}` is not in "
                              "host/cfg.c's strategy table sopts[]")

        # Any dotted key of a config section named in code anywhere must exist.
        pat = re.compile(r"(?<![\w/.$-])(" + "|".join(map(re.escape, sorted(sections))) +
                         r")\.([a-z_][a-z0-9_]*|\*)(?![\w(/-]|\.\w)")
        for line, text in self.code_items():
            for m in pat.finditer(text):
                k = m.group(0)
                if m.group(2) in FILE_EXTS:
                    continue      # a file name (host/dryrun.c is `dryrun.c` in Layout)
                if k in keys or (k.endswith(".*") and any(x.startswith(k[:-1]) for x in keys)):
                    self.ok()
                else:
                    self.fail("keys", f"{self.at(line)}: `{k}` is named as a config key but is "
                              "not in host/cfg.c's option table")

    # ---------------------------------------------------------------- 2: routes
    def served_routes(self):
        """(method, path, takes /ID, line) of the route table in host/api/ (the file that
        holds `struct route routes[]`: server.c today)."""
        m = None
        for f in sorted(glob.glob(os.path.join(self.root, "host", "api", "*.c"))):
            rel = os.path.relpath(f, self.root)
            text = self.src(rel)
            m = re.search(r"static const struct route routes\[\] = \{(.*?)\n\};", text, re.S)
            if m:
                break
        if not m:
            self.fail("routes", "host/api/*.c: no route table 'static const struct route routes[]' found")
            return []
        self.routes_file = rel
        base = text[:m.start(1)].count("\n") + 1
        out = []
        for e in re.finditer(r'\{\s*"([^"]+)",\s*([\w |]+),\s*(\w+),\s*(\w+)\s*\}', m.group(1)):
            ln = base + m.group(1)[:e.start()].count("\n")
            for meth in e.group(2).split("|"):
                meth = HTTP_METHODS.get(meth.strip())
                if meth:
                    out.append((meth, e.group(1), e.group(4) == "true", ln))
        if not out:
            self.fail("routes", f"{rel}: route table 'routes[]' parsed empty")
        return out

    def readme_routes(self):
        """(line, method, path) of every curl example and every `METHOD /path`."""
        out = []
        for f in self.fences:
            cmd, first = None, None
            for line, text in f["lines"]:
                if cmd is None:
                    if "curl " not in text:
                        continue
                    cmd, first = text[text.index("curl "):], line
                else:
                    cmd += " " + text
                u = re.search(r"localhost:\d+(/[^\s'\"|)]*)", cmd)
                if not u:
                    continue
                m = re.search(r"-X\s+([A-Z]+)", cmd)
                meth = m.group(1) if m else \
                    "POST" if re.search(r"\s(-d|--data[\w-]*)\s", cmd) else "GET"
                out.append((first, meth, u.group(1)))
                cmd = None
        for line, text in self.spans:
            for m in re.finditer(r"\b(GET|POST|PUT|DELETE) (/[\w/.{}-]*)", text):
                out.append((line, m.group(1), m.group(2)))
        return out

    def check_routes(self):
        served = self.served_routes()
        listed = self.readme_routes()
        api = self.section("HTTP API")

        def match(meth, path, r):
            if meth != r[0]:
                return False
            if path == r[1] and not r[2]:
                return True
            return r[2] and path.startswith(r[1] + "/") and \
                re.fullmatch(r"[^/]+", path[len(r[1]) + 1:]) is not None

        for r in served:
            shown = r[1] + ("/ID" if r[2] else "")
            if any(self.in_section(line, api) and match(m, p, r) for line, m, p in listed):
                self.ok()
            else:
                self.fail("routes", f"route {r[0]} {shown} ({self.routes_file}:{r[3]}) is not in "
                          "the README's ## HTTP API section")
        for line, m, p in listed:
            if any(match(m, p, r) for r in served):
                self.ok()
            else:
                self.fail("routes", f"{self.at(line)}: {m} {p} is not a route "
                          f"{getattr(self, 'routes_file', 'host/api/')} serves")

    # ---------------------------------------------------------------- 3: suites
    def suites(self):
        """{case label: set of names it reports under} from scripts/run-tests.sh."""
        text = self.src("scripts/run-tests.sh")
        m = re.search(r'\n\s*case \$s in\n(.*?)\n\s*esac', text, re.S)
        if not m:
            self.fail("suites", "scripts/run-tests.sh: no 'case $s in' suite dispatch found")
            return {}
        funcs, cur = {}, None       # NAME() { ... } on one line, or up to a line "}"
        for ln in text.split("\n"):
            if cur is not None:
                if ln == "}":
                    cur = None
                else:
                    funcs[cur] += ln + "\n"
                continue
            f = re.match(r"^(\w+)\(\) \{(.*)$", ln)
            if f:
                if f.group(2).rstrip().endswith("}"):
                    funcs[f.group(1)] = f.group(2).rstrip()[:-1]
                else:
                    funcs[f.group(1)], cur = f.group(2) + "\n", f.group(1)
        out = {}
        self.all_runs = set()     # names the 'all' arm (make test) runs
        for arm in re.finditer(r"\n\s*([\w|-]+)\)(.*?);;", m.group(1), re.S):
            body = arm.group(2)
            if arm.group(1) == "all":
                self.all_runs = set(re.findall(r"run_suite ([\w/-]+)", body)) | \
                    set(re.findall(r"(?:^|[;\s])([a-z][\w-]*)\s*(?=;|$)", body, re.M))
                continue
            names = set(re.findall(r"run_suite ([\w/-]+)", body))
            for w in re.findall(r"[\w-]+", body):
                if w in funcs:
                    names |= set(re.findall(r"run_suite ([\w/-]+)", funcs[w]))
            for label in arm.group(1).split("|"):
                out[label] = names | {label}
        # unit's own sub-suites that have literal names (unit/cli).
        for w, body in funcs.items():
            if w == "unit":
                out.setdefault("unit", {"unit"})
                out["unit"] |= set(re.findall(r"run_suite (unit/[\w-]+)", body))
        return out

    def check_suites(self):
        suites = self.suites()
        sec = self.section("Tests")
        tabs = self.tables(sec) if sec else []
        tab = next((t for t in tabs if t and t[0][1] and t[0][1][0].lower() == "suite"), None)
        if tab is None:
            self.fail("suites", f"{self.rname}: no suite table (first column 'suite') in "
                      "## Tests: the suites of scripts/run-tests.sh are not documented")
            rows = []
        else:
            rows = [(line, cells[0].strip("` ")) for line, cells in tab[1:]]
        names = {n for _, n in rows}
        for label, reported in sorted(suites.items()):
            if not reported & self.all_runs:
                self.fail("suites", f"suite '{label}' is not run by scripts/run-tests.sh all "
                          "(make test), which the README's Tests table says runs every suite")
            if names & reported:
                self.ok()
            else:
                self.fail("suites", f"suite '{label}' of scripts/run-tests.sh (reported as "
                          f"{'/'.join(sorted(reported))}) has no row in the README's Tests table")
        known = set().union(*suites.values()) if suites else set()
        # `scripts/run-tests.sh SUITE...` in the README: each a suite it takes.
        for line, text in self.code_items():
            for m in re.finditer(r"scripts/run-tests\.sh((?: [a-z][\w-]*)*)", text):
                for w in m.group(1).split():
                    if w in suites or w == "all":
                        self.ok()
                    else:
                        self.fail("suites", f"{self.at(line)}: `scripts/run-tests.sh {w}`: "
                                  f"scripts/run-tests.sh has no suite '{w}'")
        for line, n in rows:
            if n in known:
                self.ok()
            else:
                self.fail("suites", f"{self.at(line)}: suite '{n}' is not one scripts/run-tests.sh "
                          "runs (a name it takes or reports)")

    # ---------------------------------------------------------------- 4: VM scenarios
    def check_scenarios(self):
        text = self.src("scripts/vm.sh")
        m = re.search(r"^ALL_SCENARIOS=\((.*?)\)", text, re.S | re.M)
        if not m:
            self.fail("scenarios", "scripts/vm.sh: no ALL_SCENARIOS=(...) found")
            return
        named = {t for _, t in self.spans}
        for _, cells, _ in self.rows:
            named |= {c.strip("` ") for c in cells}
        for _, t in self.spans:
            mm = re.search(r"vm\.sh test (.*)", t)
            if mm:
                named |= set(mm.group(1).split())
        for s in m.group(1).split():
            if s in named:
                self.ok()
            else:
                self.fail("scenarios", f"VM scenario '{s}' (scripts/vm.sh ALL_SCENARIOS) is not "
                          f"named in {self.rname} (as `{s}` or a table cell)")

    # ---------------------------------------------------------------- 5: make targets
    def make_targets(self):
        try:
            out = subprocess.run(["make", "-C", self.root, "-pRrq", "-f", "Makefile",
                                  "__readme_probe__"], capture_output=True, text=True,
                                 timeout=60).stdout
        except (OSError, subprocess.TimeoutExpired) as e:
            self.fail("make", f"cannot read the Makefile's rules with make -p: {e}")
            return set()
        targets, not_target = set(), False
        for ln in out.split("\n"):
            if ln.startswith("# Not a target"):
                not_target = True
                continue
            m = re.match(r"^([^\s#:=][^:=]*?):(?!=)", ln)
            if m and not ln.startswith("\t"):
                if not not_target:
                    targets |= set(m.group(1).split())
                not_target = False
            elif not ln.strip():
                not_target = False
        return targets

    @staticmethod
    def make_goals(text):
        """Targets of each `make` in command position of a shell line."""
        text = re.sub(r"(^|\s)#.*", "", text)
        try:
            words = shlex.split(text, posix=True)
        except ValueError:
            words = text.split()
        goals, i, cmdpos = [], 0, True
        while i < len(words):
            w = words[i]
            if w in (";", "&&", "||", "|", "(", "$(") or w.endswith(";"):
                cmdpos = True
                i += 1
                continue
            if cmdpos and re.fullmatch(r"[A-Za-z_]\w*=.*", w):
                i += 1
                continue
            if cmdpos and w in ("sudo", "env", "time", "nice"):
                i += 1
                while i < len(words) and words[i].startswith("-"):
                    i += 2 if words[i] in ("-n", "-u") else 1
                continue
            if cmdpos and w == "make":
                i += 1
                while i < len(words) and words[i] not in (";", "&&", "||", "|", ")"):
                    a = words[i]
                    if a in ("-C", "-f", "-I", "-o", "-W"):
                        i += 2
                        continue
                    if not a.startswith("-") and "=" not in a and re.fullmatch(r"[\w.+-]+", a):
                        goals.append(a)
                    i += 1
                cmdpos = False
                continue
            cmdpos = False
            i += 1
        return goals

    def check_make(self):
        targets = self.make_targets()
        if not targets:
            self.fail("make", f"no targets read from {self.root}/Makefile (make -pRrq)")
            return
        for line, text in self.code_items():
            for g in self.make_goals(text):
                if re.fullmatch(r"[A-Z][A-Z_]*", g):
                    continue      # a metavariable in the README text (`make TARGET`)
                if g in targets:
                    self.ok()
                elif g in FOREIGN_MAKE and re.search(r"\b" + re.escape(g) + r"\b",
                                                     self.src(FOREIGN_MAKE[g])):
                    self.ok()    # a kernel tree's target, run by that script
                else:
                    self.fail("make", f"{self.at(line)}: `make {g}`: the Makefile has no target '{g}'")

    # ---------------------------------------------------------------- 6: paths
    def tracked_dirs(self):
        try:
            out = subprocess.run(["git", "-C", self.root, "ls-files"], capture_output=True,
                                 text=True, timeout=60)
            if out.returncode == 0 and out.stdout:
                return sorted({p.split("/")[0] for p in out.stdout.split("\n") if "/" in p})
        except (OSError, subprocess.TimeoutExpired):
            pass
        return sorted(d for d in os.listdir(self.root)
                      if os.path.isdir(os.path.join(self.root, d)) and d != "build"
                      and not d.startswith(".git"))

    def git_has(self, obj):
        try:
            return subprocess.run(["git", "-C", self.root, "cat-file", "-e", obj],
                                  capture_output=True, timeout=30).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False      # no git here: the commit counts as not in this clone

    def check_paths(self):
        dirs = self.tracked_dirs()
        if not dirs:
            self.fail("paths", f"{self.root}: no top-level directories to look paths up in")
            return
        pat = re.compile(r"(?<![\w./~$@-])((?:" + "|".join(map(re.escape, dirs)) +
                         r")/[\w./*?+-]*)")
        for line, text in self.code_items():
            for m in pat.finditer(text):
                p = m.group(1).rstrip(".,:")     # the sentence's punctuation
                full = os.path.join(self.root, p)
                # NAME, VER...: a metavariable standing for any name; * and ?: a glob.
                g = re.sub(r"(?<![a-z])[A-Z][A-Z_]+(?![a-z])", "*", p)
                if os.path.exists(full) or (g != p or any(c in p for c in "*?[")) and \
                        glob.glob(os.path.join(self.root, g)):
                    self.ok()
                    continue
                # A file of the past, named with its commit ("`F` in commit C", "(at C)",
                # later in the same table cell or line): it must be in that commit.
                after = self.lines[line - 1][self.lines[line - 1].find(p) + len(p):]
                after = after.split(" | ")[0]
                h = re.search(r"\b(?:in commit|at) ([0-9a-f]{7,40})\b", after)
                if h:
                    if self.git_has(f"{h.group(1)}:{p}"):
                        self.ok()     # named as the file of that commit, and it was
                        continue
                    if not self.git_has(h.group(1)):
                        print(f"skip readme paths: {self.at(line)}: `{p}` in commit {h.group(1)}: "
                              "that commit is not in this clone (not counted)")
                        continue
                self.fail("paths", f"{self.at(line)}: `{p}` does not exist in the tree")

    # ---------------------------------------------------------------- 7: options
    @staticmethod
    def help_options(text):
        opts = set()
        for ln in text.split("\n"):
            if re.match(r"^\s*Usage:", ln):     # [--opt ARG] in the usage line
                opts |= set(re.findall(r"\[(--?[\w-]+)", ln))
            m = re.match(r"^\s+((?:-\w, )?--[\w-]+|-\w)\b", ln)
            if m:
                opts |= set(re.findall(r"--?[\w-]+", m.group(1)))
        return opts

    def run_help(self, args):
        r = subprocess.run([self.binary] + args, capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr

    def check_options(self):
        if not os.access(self.binary, os.X_OK):
            self.fail("options", f"{self.binary} is missing (make all): `--help`'s options not "
                      "checked against ## Command line")
            return
        for args, secname in ((["--help"], "Command line"), (["simulate", "--help"], "Simulator*"),
                              (["replay", "--help"], "Simulator*")):
            rc, out = self.run_help(args)
            opts = self.help_options(out)
            what = " ".join([os.path.basename(self.binary)] + args)
            if rc != 0 or not opts:
                self.fail("options", f"`{what}` exited {rc} or listed no options")
                continue
            sec = self.section(secname)
            text = " ".join(t for line, t in self.code_items() if self.in_section(line, sec))
            for o in sorted(opts):
                if re.search(r"(?<![\w-])" + re.escape(o) + r"(?![\w-])", text):
                    self.ok()
                else:
                    self.fail("options", f"`{o}` (printed by `{what}`) is not in the README's "
                              f"## {secname.rstrip('*')} section")
            if args == ["--help"]:
                for tab in self.tables(sec):
                    if not tab[0][1] or tab[0][1][0].lower() != "option":
                        continue
                    for line, cells in tab[1:]:
                        for o in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", cells[0]):
                            if o in opts:
                                self.ok()
                            else:
                                self.fail("options", f"{self.at(line)}: option `{o}` is not one "
                                          f"`{what}` prints")

    # ---------------------------------------------------------------- policy API
    def check_policy(self):
        """The callbacks the host calls (host/pol/*.c) against the callback table of
        "## Writing a policy"; the library's g.* (policies/lib/gthulhu/sched.lua) against
        the g.* that section lists; every g.NAME the README names exists."""
        pol_dir = os.path.join(self.root, "host/pol")
        bridge = "\n".join(self.src("host/pol/" + n) for n in sorted(os.listdir(pol_dir))
                            if n.endswith(".c"))
        lib = self.src(LIB)
        sec = self.section("Writing a policy")
        # Callbacks: looked up on P (lua_getfield(.., "NAME") with P on the stack comment),
        # or called as P.NAME in the Lua the host runs.
        cbs = set(re.findall(r'lua_getfield\(L, -?\d+, "(\w+)"\);\s*/\* stack:[^*]*\bP\b', bridge))
        for lit in re.findall(r'"((?:[^"\\\n]|\\.)*)"', bridge):
            cbs |= set(re.findall(r"\bP\.(\w+)", lit))
        rows = []
        for tab in self.tables(sec):
            if tab[0][1] and tab[0][1][0].lower() == "callback":
                rows = [(line, re.findall(r"P\.(\w+)", cells[0])) for line, cells in tab[1:]]
        doc = {n: line for line, ns in rows for n in ns}
        if not cbs:
            self.fail("policy", "host/pol/*.c: no policy callback found (P.NAME)")
        for n in sorted(cbs):
            if n in doc:
                self.ok()
            else:
                self.fail("policy", f"callback P.{n} (host/pol/*.c calls it) has no row in "
                          "the callback table of ## Writing a policy")
        for n, line in sorted(doc.items()):
            if n in cbs:
                self.ok()
            else:
                self.fail("policy", f"{self.at(line)}: callback P.{n} is not one host/pol/*.c "
                          "calls")
        # The library: g.NAME = ... or function g.NAME(...) at the top level of sched.lua.
        defined = {}
        for i, ln in enumerate(lib.split("\n"), 1):
            m = re.match(r"^(?:function g\.(\w+)\s*\(|g\.(\w+)\s*=)", ln)
            if m:
                defined.setdefault(m.group(1) or m.group(2), i)
        if not defined:
            self.fail("policy", f"{LIB}: no g.NAME defined")
        # Those the host itself calls (g.setup, g.set_strategies) are its part of the
        # contract, not the policy's: they need no entry.
        host_only = set(re.findall(r"\bg\.(\w+)", " ".join(re.findall(r'"[^"\n]*"', bridge))))
        host_only |= set(re.findall(r'lua_getfield\(L, -?\d+, "(\w+)"\);\s*/\* stack:[^*]*\bg\b', bridge))
        named = {}
        for line, text in self.code_items():
            for m in re.finditer(r"(?<![\w.])g\.(\w+)", text):
                named.setdefault(m.group(1), []).append(line)
        for n, ln in sorted(defined.items()):
            if n in host_only:
                continue
            if any(self.in_section(l, sec) for l in named.get(n, [])):
                self.ok()
            else:
                self.fail("policy", f"g.{n} ({LIB}:{ln}) is not in the library list of "
                          "## Writing a policy")
        for n, lines in sorted(named.items()):
            if n in defined:
                self.ok()
            else:
                self.fail("policy", f"{self.at(lines[0])}: g.{n} is not defined in {LIB}")

    # ---------------------------------------------------------------- stats: line
    def check_stats(self):
        """Every key of the stats: line is described in the README's stats: paragraph, and
        every key described is printed. The keys: a real 1 s --dry-run's last stats: line
        (it prints one at exit), and the live scheduler's format in host/sched_bpf.c."""
        if not os.access(self.binary, os.X_OK):
            self.fail("stats", f"{self.binary} is missing (make all): the stats: line not checked")
            return
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as cf:
            cf.write("dryrun:\n  duration_s: 1\n  tasks: 8\n")
            cf.flush()
            r = subprocess.run([self.binary, "--dry-run", "-s", "-c", cf.name,
                                os.path.join(self.root, "policies", "simple.lua")],
                               capture_output=True, text=True, timeout=60)
        lines = [l for l in r.stdout.split("\n") if l.startswith("stats: ")]
        if r.returncode != 0 or not lines:
            self.fail("stats", f"a 1 s --dry-run exited {r.returncode} with no stats: line: "
                      f"{(r.stdout + r.stderr).strip()[-300:]}")
            return
        keys = {k: "a --dry-run's stats: line" for k in re.findall(r"(\w+)=", lines[-1])}
        src = self.src("host/sched_bpf.c")
        m = re.search(r"\n\w[\w ]*\bsched_format_stats\(.*?\n\}", src, re.S)
        if not m:
            self.fail("stats", "host/sched_bpf.c: no sched_format_stats() found")
        else:
            for k in re.findall(r"(\w+)=%", m.group(0)):
                keys.setdefault(k, "host/sched_bpf.c sched_format_stats()")
        start = next((i for i, t in enumerate(self.lines, 1) if t.startswith("The `stats:` line")), None)
        if start is None:
            self.fail("stats", f"{self.rname}: no paragraph starting 'The `stats:` line' "
                      "(the stats: keys' reference)")
            return
        end = start
        while end < len(self.lines) and self.lines[end].strip():
            end += 1
        doc = {}
        for line, text in self.spans:
            if start <= line <= end and re.fullmatch(r"[a-z][a-z0-9_]*", text):
                doc.setdefault(text, line)
        for k, where in sorted(keys.items()):
            if k in doc:
                self.ok()
            else:
                self.fail("stats", f"stats: key `{k}` (printed: {where}) is not described in the "
                          f"stats: paragraph ({self.at(start)})")
        for k, line in sorted(doc.items()):
            if k in keys:
                self.ok()
            else:
                self.fail("stats", f"{self.at(line)}: `{k}` is described as a stats: key but the "
                          "stats: line has no such key")

    # ---------------------------------------------------------------- exit codes
    def check_exits(self):
        """host/common.h's EXIT_* codes against the "Exit codes:" paragraph of
        "## Command line" (N meaning · N meaning ...), both ways."""
        vals = {int(v): (n, ln) for ln, (n, v) in
                ((i, m.groups()) for i, t in enumerate(self.src("host/common.h").split("\n"), 1)
                 for m in [re.match(r"\s*(EXIT_\w+)\s*=\s*(\d+)", t)] if m)}
        if not vals:
            self.fail("exits", "host/common.h: no EXIT_* codes found")
            return
        sec = self.section("Command line")
        start = next((i for i, t in enumerate(self.lines, 1)
                      if self.in_section(i, sec) and t.startswith("Exit codes:")), None)
        if start is None:
            self.fail("exits", f"{self.rname}: ## Command line has no 'Exit codes:' paragraph")
            return
        end = start
        while end < len(self.lines) and self.lines[end].strip():
            end += 1
        text = " ".join(self.lines[start - 1:end])[len("Exit codes:"):]
        listed = [int(x) for x in re.findall(r"(?:^|·)\s*(\d+)\s", text)]
        for v, (n, ln) in sorted(vals.items()):
            if v in listed:
                self.ok()
            else:
                self.fail("exits", f"exit code {v} ({n}, host/common.h:{ln}) is not in the "
                          f"'Exit codes:' paragraph ({self.at(start)})")
        for v in listed:
            if v in vals:
                self.ok()
            else:
                self.fail("exits", f"{self.at(start)}: exit code {v} is not one of host/common.h's "
                          "EXIT_* codes")

    def run(self, skip=()):
        for c in (self.check_sections, self.check_keys, self.check_routes, self.check_suites,
                  self.check_scenarios, self.check_make, self.check_paths, self.check_options,
                  self.check_policy, self.check_stats, self.check_exits):
            before = self.failed
            name = c.__name__[len("check_"):]
            if name in skip:
                print(f"skip readme {name} (--skip)")
                continue
            try:
                c()
            except OSError as e:      # a source file the check reads is gone or renamed
                self.fail(name, f"cannot read {e.filename}: {e.strerror} (the check needs it)")
            if self.failed == before:
                print(f"ok   readme {name}")
        print(f"{self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.normpath(os.path.join(here, "..", "..")),
                    help="the repository (default: this checkout)")
    ap.add_argument("--bin", default=None, help="the gthulhu-lua binary (default ROOT/build/gthulhu-lua)")
    ap.add_argument("--skip", default="", help="checks to leave out, comma-separated (e.g. stats: "
                    "it runs a 1 s --dry-run)")
    ap.add_argument("readme", nargs="?", default=None, help="README to check (default ROOT/README.md)")
    a = ap.parse_args()
    readme = a.readme or os.path.join(a.root, "README.md")
    binary = a.bin or os.path.join(a.root, "build", "gthulhu-lua")
    if not os.path.isfile(readme):
        print(f"FAIL readme: {readme}: no such file")
        print("0 passed, 1 failed")
        return 1
    return Checker(readme, a.root, binary).run(set(filter(None, a.skip.split(","))))


if __name__ == "__main__":
    sys.exit(main())
