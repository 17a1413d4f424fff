"""The layers stay as drawn: shared/ is the kernel and imports no services; a stage imports
no other stage; only services.cli may import every package.

Walks every import statement (also those inside functions) of every module under shared/
and services/, so a lazy import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CLI = "services.cli"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str | None = None) -> set[str]:
    """Every module *path* (module *name*) imports, absolute names (relative ones resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (name or _module_name(path)).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", None) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant | ast.JoinedStr)
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.JoinedStr):  # f"services.{x}.app": a dynamic services import
                head = arg.values[0]
                if isinstance(head, ast.Constant) and isinstance(head.value, str):
                    found.add(head.value.rstrip("."))
    return found


def violation(importer: str, imported: str) -> str | None:
    """Why *importer* must not import *imported*, or None when allowed."""
    if imported != "services" and not imported.startswith("services."):
        return None
    if importer.startswith("shared"):
        return "shared/ is the runtime kernel and never imports services"
    if importer == CLI or importer.startswith(CLI + "."):
        return None
    own = ".".join(importer.split(".")[:2])
    target = ".".join(imported.split(".")[:2])
    if target == CLI:
        return "only services.cli may import the command line"
    if target != own and target != "services":
        return f"a stage imports no other stage ({own} -> {target})"
    return None


def all_violations() -> list[str]:
    out = []
    for folder in ("shared", "services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            importer = _module_name(path)
            for imported in sorted(imports_of(path)):
                why = violation(importer, imported)
                if why:
                    out.append(f"{importer} imports {imported}: {why}")
    return out


def test_no_upward_or_cross_stage_import() -> None:
    assert all_violations() == []


def test_the_rules_catch_what_they_should() -> None:
    assert violation("shared.faust_app", "services.cli.main")
    assert violation("shared.stage", "services.writer.articles")
    assert violation("services.writer.app", "services.enricher.pipeline")
    assert violation("services.fetcher.app", "services.cli.common")
    assert violation("services.parser.app", "services.parser.dedup") is None
    assert violation("services.cli.supervisor", "services.fetcher.admin") is None
    assert violation("services.enricher.app", "shared.stage") is None
    assert violation("services.writer.app", "sqlalchemy") is None


def test_the_walk_sees_lazy_and_dynamic_imports(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "import importlib\n"
        "def f(name):\n"
        "    from services.writer import articles\n"
        "    return importlib.import_module(f'services.{name}.app')\n"
    )
    found = imports_of(source, "shared.m")
    assert "services.writer.articles" in found
    assert "services" in found
    assert all_violations_of(found, "shared.m")


def all_violations_of(found: set[str], importer: str) -> list[str]:
    return [imported for imported in found if violation(importer, imported)]


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def test_topic_and_group_names_are_spelled_only_in_the_topology() -> None:
    """Code names a topic or a consumer group through shared.topology, never as a literal
    (docstrings and Field descriptions may mention them)."""
    from shared.topology import ALL_TOPICS, GROUP_PREFIX, SERVICES

    names = {spec.name for spec in ALL_TOPICS} | {GROUP_PREFIX + s for s in SERVICES}
    found = []
    for folder in ("shared", "services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path == ROOT / "shared" / "topology.py":
                continue
            tree = ast.parse(path.read_text())
            docs = _docstring_nodes(tree)
            described = {
                id(keyword.value)
                for node in ast.walk(tree)
                if isinstance(node, ast.Call)
                for keyword in node.keywords
                if keyword.arg in ("description", "comment")
            }
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and id(node) not in docs | described
                    and any(name in node.value for name in names)
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    assert found == []
