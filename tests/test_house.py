"""The house rules that keep venues plug-ins and the judge apart from what it judges.

The oracle and the checker never import the components they judge (book, sync, any venue's decoder
or sequencing rule), not even through another module: a bug there must not be copied into the
truth. The walk follows the imports a module runs when loaded (module level, parent packages
included; `if TYPE_CHECKING:` blocks and imports inside functions do not run on load).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.venues.registry import DIALECTS, ORACLE_RULES, dialect, package_of

ROOT = Path(__file__).resolve().parents[1]
VENUES = ROOT / "harness" / "venues"
JUDGES = ["harness.oracle", "harness.checker"] + [
    f"harness.venues.{path.parent.name}.oracle_rule" for path in sorted(VENUES.glob("*/oracle_rule.py"))
]


def _judged(module: str) -> bool:
    parts = module.split(".")
    if module in ("harness.book", "harness.sync"):
        return True
    return len(parts) == 4 and parts[:2] == ["harness", "venues"] and parts[3] in ("decoder", "sequencing")


def _source(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _load_time_imports(module: str, path: Path) -> set[str]:
    """Modules `module` imports when it is loaded, as dotted names (relative imports resolved)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If):
                test = node.test
                if not (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(path.read_text()).body)
    return found


def reachable(start: str) -> dict[str, str]:
    """Every project module loading `start` loads, each with the module that imported it."""
    seen: dict[str, str] = {start: ""}
    todo = [start]
    while todo:
        module = todo.pop()
        parts = module.split(".")
        candidates = {".".join(parts[:i]) for i in range(1, len(parts))}  # parent packages run first
        path = _source(module)
        if path is not None:
            candidates |= _load_time_imports(module, path)
        for name in candidates:
            if name not in seen and _source(name) is not None:
                seen[name] = module
                todo.append(name)
    return seen


def _chain(seen: dict[str, str], module: str) -> str:
    links = [module]
    while seen[links[-1]]:
        links.append(seen[links[-1]])
    return " <- ".join(links)


@pytest.mark.parametrize("judge", JUDGES)
def test_the_judge_never_loads_what_it_judges(judge: str) -> None:
    seen = reachable(judge)
    judged = sorted(name for name in seen if _judged(name))
    assert not judged, f"{judge} loads {judged[0]}: {_chain(seen, judged[0])}"


def test_the_walk_sees_through_modules_and_packages() -> None:
    # The default subject wires the sync rule in through the dialect, lazily: the walk must not see
    # that import; it must see the direct one of harness.sync.
    seen = reachable("harness.default_subject")
    assert "harness.sync" in seen
    assert "harness.venues.binance_spot.decoder" not in reachable("harness.venues.binance_usdm")
    assert "harness.venues.binance_spot.decoder" in reachable("harness.venues.binance_usdm.decoder")


def test_every_venue_package_is_registered_with_its_dialect_and_oracle_rule() -> None:
    packages = sorted(path.parent.name for path in VENUES.glob("*/__init__.py"))
    assert sorted(name.replace("-", "_") for name in DIALECTS) == packages
    for name, venue in DIALECTS.items():
        assert venue.name == name
        assert package_of(name) == f"harness.venues.{name.replace('-', '_')}"
        assert (VENUES / name.replace("-", "_") / "oracle_rule.py").is_file(), f"{name} has no oracle_rule.py"
        assert ORACLE_RULES[name].__name__ == f"{package_of(name)}.oracle_rule"


def test_an_unknown_venue_is_one_error_naming_the_known_ones() -> None:
    with pytest.raises(HarnessError, match="known venues: binance-spot, binance-usdm"):
        dialect("kraken")
