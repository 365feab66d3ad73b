"""Architecture measurements of src/groklab (issue 11): module and function sizes, family
checks, imports inside functions, import cycles. Standard library only; reads, never imports.

    python tools/arch_stats.py [--top N]
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src"
FAMILY_CHECK = re.compile(r"family\s*(==|!=|in\b|not in\b)")


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_block(node) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported(mod: str, path: Path, tree: ast.AST, known: set[str]):
    """(target module, inside a function?) for every groklab import of ``mod``."""
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]

    def walk(node, in_fn):
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                continue  # annotations only: no dependency at run time (as lint-imports counts)
            fn = in_fn or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for a in child.names:
                    yield a.name, fn
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - child.level + 1]
                                    + ([base] if base else []))
                for a in child.names:
                    full = f"{base}.{a.name}"
                    yield (full if full in known else base), fn
            yield from walk(child, fn)

    for target, fn in walk(tree, False):
        if target.split(".")[0] == "groklab":
            while target not in known and "." in target:
                target = target.rpartition(".")[0]
            yield target, fn


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--top", type=int, default=8)
    top = ap.parse_args().top
    mods = modules()
    known = set(mods)
    sizes, funcs, family = [], [], []
    graph_all: dict[str, set[str]] = {m: set() for m in mods}
    graph_top: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
        sizes.append((len(text.splitlines()), mod))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                funcs.append((node.end_lineno - node.lineno + 1, f"{mod}:{node.name}"))
        family += [f"{mod}:{i}" for i, line in enumerate(text.splitlines(), 1) if FAMILY_CHECK.search(line)]
        for target, in_fn in imported(mod, path, tree, known):
            if target != mod and not mod.startswith(target + "."):
                graph_all[mod].add(target)
                if not in_fn:
                    graph_top[mod].add(target)
    inner = {mod: sum(1 for _, fn in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))) if fn)
             for mod, path in mods.items()}
    print(f"modules: {len(mods)}, lines: {sum(s for s, _ in sizes)}")
    print("largest modules (lines):", ", ".join(f"{m} {n}" for n, m in sorted(sizes)[::-1][:top]))
    print("largest functions (lines):", ", ".join(f"{m} {n}" for n, m in sorted(funcs)[::-1][:top]))
    print(f"family checks (`family ==|!=|in`): {len(family)}:", ", ".join(family))
    busiest = sorted(((n, m) for m, n in inner.items() if n), reverse=True)[:top]
    print(f"imports inside functions: {sum(inner.values())}; most:",
          ", ".join(f"{m} {n}" for n, m in busiest))
    print("import cycles (all imports):", cycles(graph_all) or "none")
    print("import cycles (module-level imports):", cycles(graph_top) or "none")


def _import_nodes(tree):
    def walk(node, in_fn):
        for child in ast.iter_child_nodes(node):
            fn = in_fn or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                yield child, fn
            yield from walk(child, fn)
    return walk(tree, False)


if __name__ == "__main__":
    main()
