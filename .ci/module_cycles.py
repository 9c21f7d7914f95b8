#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a cycle.

Nodes are the modules two levels below each crate's root (`graphql::loaders`,
`graphql::types`, `service::deal`, `http`, ...); deeper files count as their
two-level ancestor. An edge A -> B is any `crate::...` or `super::...` path in
A naming B. A module and its own ancestors or descendants are one family (a
parent declares its children, children use the parent's helpers), so edges
inside a family do not count. Any other strongly connected set of modules is
a cycle and is printed.

    python3 .ci/module_cycles.py            # every crate of the workspace
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CRATES = ["api/src", "core/src", "domain/src", "entity/src", "migration/src"]
PATH = re.compile(r"\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super)((?:::[a-z_][a-z0-9_]*)*)::\{([^}]*)\}", re.S)


def module_of(rel):
    """The module path of a file relative to its crate's src."""
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def node(parts, modules):
    """The two-level module that holds the module `parts`, if any."""
    for depth in (2, 1):
        if len(parts) >= depth and tuple(parts[:depth]) in modules:
            return tuple(parts[:depth])
    return None


def related(a, b):
    return a[: len(b)] == b or b[: len(a)] == a


def check(src):
    files = {}
    for dirpath, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                full = os.path.join(dirpath, n)
                files[full] = module_of(os.path.relpath(full, src))
    modules = set()
    for parts in files.values():
        for depth in (1, 2):
            if len(parts) >= depth:
                modules.add(tuple(parts[:depth]))
    edges = {}
    for full, parts in files.items():
        here = node(parts, modules)
        if here is None:
            continue
        # Tests inside a file are not part of the module's dependencies.
        text = open(full, encoding="utf-8").read().split("#[cfg(test)]")[0]
        text = re.sub(r"//[^\n]*", "", text)
        targets = []
        for m in PATH.finditer(text):
            targets.append((m.group(1), m.group(2).split("::")[1:]))
        for m in USE_GROUP.finditer(text):
            base = m.group(2).split("::")[1:] if m.group(2) else []
            for item in m.group(3).split(","):
                item = item.strip().split("::")[0].split(" ")[0]
                if re.fullmatch(r"[a-z_][a-z0-9_]*", item or ""):
                    targets.append((m.group(1), base + [item]))
        is_mod_file = os.path.basename(full) in ("mod.rs", "lib.rs")
        for kind, path in targets:
            if kind == "crate":
                target = path
            else:
                # `super` from a mod.rs is the parent of its module.
                base = parts[:-1]
                target = base + path
            to = node(target, modules)
            if to is None or to == here or related(here, to):
                continue
            edges.setdefault(here, set()).add(to)
    # Strongly connected components (Tarjan).
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted("::".join(c) for c in comp))

    sys.setrecursionlimit(10_000)
    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    bad = False
    for crate in CRATES:
        src = os.path.join(ROOT, crate)
        if not os.path.isdir(src):
            continue
        for comp in check(src):
            bad = True
            print(f"import cycle in {crate}: {' <-> '.join(comp)}")
    if bad:
        sys.exit(1)
    print("module imports: no cycles")


if __name__ == "__main__":
    main()
