"""The layers of ARCHITECTURE.md, checked by reading the source (no app is built).

Every module under `app/` is parsed with `ast`; its imports are resolved to what they name,
either a module ("app.services.clusters") or a symbol ("app.models:Cluster"), including symbols
reached through a module alias (`models.Cluster`). The rules below are one table: who, what
they must not use, and why. Imports under `if TYPE_CHECKING:` are ignored (hints only).
"""

from __future__ import annotations

import ast
import fnmatch
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
APP_DIR = REPO / "app"


@dataclass(frozen=True)
class Rule:
    """Modules matching `modules` must not use anything matching `forbidden`.

    Patterns are fnmatch globs over module names ("app.blueprints.*") and over what a module
    uses: "package.module" for a module, "package.module:Name" for a symbol in it.
    """

    name: str
    modules: tuple[str, ...]
    forbidden: tuple[str, ...]
    why: str
    exempt: dict[str, str] = field(default_factory=dict)  # "module -> used": reason


CLUSTER_MODELS = ("app.models:Cluster", "app.models:ClusterResource")
DEPLOYMENT_MODEL = ("app.models:Deployment",)
DATABASE_ACCESS = ("app.extensions:db", "sqlalchemy", "sqlalchemy.*", "flask_sqlalchemy*")

RULES = (
    Rule(
        "thin edges",
        modules=("app.blueprints", "app.blueprints.*"),
        forbidden=DATABASE_ACCESS,
        why="blueprints and the API call one service function; they never query or commit",
        exempt={
            "app.blueprints.main.errors -> app.extensions:db": (
                "the 500 handler rolls back the failed request's session before rendering"
            ),
        },
    ),
    Rule(
        "deployments reach clusters through their interface",
        modules=("app.services.deployments",),
        forbidden=CLUSTER_MODELS,
        why="capacity and usage go through services.clusters (snapshot, check, utilize, free)",
    ),
    Rule(
        "clusters know nothing of deployments",
        modules=("app.services.clusters",),
        forbidden=("app.services.deployments", *DEPLOYMENT_MODEL),
        why="clusters only receive counts from the deployments side",
    ),
    Rule(
        "accounts know nothing of clusters or deployments",
        modules=("app.services.accounts",),
        forbidden=(
            "app.services.clusters",
            "app.services.deployments",
            *CLUSTER_MODELS,
            *DEPLOYMENT_MODEL,
        ),
        why="the user app of the original design never reaches into the other two",
    ),
    Rule(
        "history records, it does not reach",
        modules=("app.services.history",),
        forbidden=(
            "app.services.accounts",
            "app.services.clusters",
            "app.services.deployments",
            *CLUSTER_MODELS,
            *DEPLOYMENT_MODEL,
        ),
        why="every domain writes its own entries through history.record; history reads only events",
    ),
    Rule(
        "the resource trail belongs to clusters",
        modules=("app.services.*",),
        forbidden=("app.services.usage", "app.models:UsageSample"),
        why="usage over time is cluster state: others read and write it through services.clusters",
        exempt={
            "app.services.clusters -> app.services.usage": "clusters is the trail's one door",
            "app.services.usage -> app.models:UsageSample": "the trail owns its table",
        },
    ),
    Rule(
        "the resource trail knows nothing of deployments",
        modules=("app.services.usage",),
        forbidden=("app.services.deployments", *DEPLOYMENT_MODEL, "app.services.accounts"),
        why="it stores what services.clusters hands it: amounts by kind",
    ),
    Rule(
        "services sit below the edges",
        modules=("app.services", "app.services.*"),
        forbidden=("app.blueprints", "app.blueprints.*"),
        why="a rule is written once and serves both the pages and the API",
    ),
    Rule(
        "models are shared data, not behaviour",
        modules=("app.models", "app.models.*"),
        forbidden=("app.services", "app.services.*", "app.blueprints", "app.blueprints.*"),
        why="models hold columns and constraints; rules live in services",
    ),
    Rule(
        "telemetry is a bottom layer",
        modules=("app.telemetry", "app.telemetry.*"),
        forbidden=(
            "app.services",
            "app.services.*",
            "app.blueprints",
            "app.blueprints.*",
            "app.models",
            "app.extensions",
            *DATABASE_ACCESS,
        ),
        why="services count into metrics and every layer logs; telemetry depends on none of them",
    ),
    Rule(
        "drivers know no database, web or services",
        modules=(
            "app.runtime.base",
            "app.runtime.engines",
            "app.runtime.registry",
            "app.runtime.simulated",
            "app.runtime.docker",
            "app.runtime.swarm",
        ),
        forbidden=(
            *DATABASE_ACCESS,
            "flask",
            "flask.*",
            "app.models",
            "app.services",
            "app.services.*",
            "app.blueprints",
            "app.blueprints.*",
        ),
        why="a driver makes one engine match; the reconciler (services.reconcile) owns the rest",
    ),
    Rule(
        "scheduling services call no driver",
        modules=(
            "app.services.deployments",
            "app.services.clusters",
            "app.services.dashboards",
            "app.services.accounts",
            "app.services.history",
        ),
        forbidden=("app.runtime", "app.runtime.*"),
        why="engines are reached through services.engines (outside transactions) and the "
        "reconciler only, never inside a scheduling transaction",
    ),
    Rule(
        "extensions are the bottom layer",
        modules=("app.extensions",),
        forbidden=("app", "app.*"),
        why="extensions are unbound objects everyone imports; they import nobody in the app",
    ),
)


@dataclass(frozen=True)
class Pure:
    """Modules matching `modules` import only the standard library and the app modules
    matching `allowed` (each of those itself pure)."""

    modules: tuple[str, ...]
    allowed: tuple[str, ...]
    why: str


PURE = (
    Pure(
        ("app.scheduler", "app.scheduler.*"),
        ("app.scheduler", "app.scheduler.*", "app.quantities"),
        "the scheduler is deterministic and testable without Flask or a database",
    ),
    Pure(
        ("app.quantities",),
        (),
        "quantities are parsed and formatted the same way in every layer",
    ),
)


@dataclass
class ModuleImports:
    modules: set[str] = field(default_factory=set)  # modules this one depends on
    used: set[str] = field(default_factory=set)  # modules and "module:Symbol" it uses
    top_level_packages: set[str] = field(default_factory=set)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def app_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(APP_DIR.rglob("*.py"))}


def is_package(module: str) -> bool:
    return app_modules()[module].name == "__init__.py"


def resolve_relative(module: str, level: int, target: str | None) -> str:
    package = module if is_package(module) else module.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{target}" if target else package


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(inner) for inner in ast.walk(child))
    return skipped


@cache
def imports_of(module: str) -> ModuleImports:
    tree = ast.parse(app_modules()[module].read_text(), filename=str(app_modules()[module]))
    skipped = type_checking_nodes(tree)
    found = ModuleImports()
    aliases: dict[str, str] = {}  # local name -> module it stands for

    def add_module(name: str) -> None:
        found.used.add(name)
        found.top_level_packages.add(name.split(".")[0])
        if name in app_modules():
            found.modules.add(name)

    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add_module(alias.name)
                if alias.asname:
                    aliases[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source = (
                resolve_relative(module, node.level, node.module) if node.level else node.module
            )
            assert source, f"unresolvable import in {module}"
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                if submodule in app_modules():
                    add_module(submodule)
                    aliases[alias.asname or alias.name] = submodule
                else:
                    add_module(source)
                    found.used.add(f"{source}:{alias.name}")
    # Symbols reached through a module alias: `models.Cluster`, `sa.select`.
    for node in ast.walk(tree):
        if (
            id(node) not in skipped
            and isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
        ):
            found.used.add(f"{aliases[node.value.id]}:{node.attr}")
    return found


def matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def test_the_import_reader_sees_the_app() -> None:
    """Guard against the rules passing vacuously because nothing was parsed."""
    modules = app_modules()
    for expected in ("app", "app.models", "app.scheduler", "app.services.deployments"):
        assert expected in modules
    assert "app.extensions" in imports_of("app.models").modules
    assert "app.models:Cluster" in imports_of("app.services.clusters").used


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.name)
def test_layer_rule(rule: Rule) -> None:
    violations = []
    for module in app_modules():
        if not matches(module, rule.modules):
            continue
        for used in sorted(imports_of(module).used):
            key = f"{module} -> {used}"
            if matches(used, rule.forbidden) and key not in rule.exempt:
                violations.append(key)
    assert violations == [], f"{rule.name}: {rule.why}.\n" + "\n".join(violations)


def pure_modules() -> list[tuple[str, Pure]]:
    return [
        (module, rule) for rule in PURE for module in app_modules() if matches(module, rule.modules)
    ]


def test_every_module_of_the_scheduler_package_is_checked() -> None:
    checked = {module for module, _ in pure_modules()}
    assert {"app.scheduler", "app.scheduler.search", "app.scheduler.decide"} <= checked
    assert len([m for m in checked if m.startswith("app.scheduler")]) >= 8


@pytest.mark.parametrize(("module", "rule"), pure_modules(), ids=lambda x: getattr(x, "why", x))
def test_pure_modules_import_only_the_standard_library(module: str, rule: Pure) -> None:
    found = imports_of(module)
    outside = {
        package
        for package in found.top_level_packages
        if package not in ("__future__", "app") and package not in sys.stdlib_module_names
    }
    app_used = {
        used.partition(":")[0]
        for used in found.used
        if used == "app" or used.startswith(("app.", "app:"))
    }
    not_allowed = {used for used in app_used if not matches(used, rule.allowed)}
    assert outside == set() and not_allowed == set(), f"{module}: {rule.why}"


def test_nothing_in_app_imports_the_application_factory() -> None:
    """Only wsgi.py (and tests) build the app; inside `app/` that would be a cycle waiting."""
    offenders = [
        f"{module} -> {used}"
        for module in app_modules()
        if module != "app"
        for used in imports_of(module).used
        if used == "app" or used.startswith("app:")
    ]
    assert offenders == []


ENGINE_SDK_USERS = ("app.runtime.docker", "app.runtime.swarm")


def test_only_the_runtime_drivers_import_the_docker_sdk() -> None:
    """The Docker SDK is imported by the docker and swarm drivers alone (ARCHITECTURE.md,
    "Going live"): services reach engines through `services.engines` and the reconciler."""
    offenders = [
        f"{module} -> {used}"
        for module in app_modules()
        if module not in ENGINE_SDK_USERS
        for used in sorted(imports_of(module).used)
        if matches(used, ("docker", "docker.*", "docker:*"))
    ]
    assert offenders == []
    assert "docker" in imports_of("app.runtime.docker").top_level_packages  # not vacuous


def test_no_legacy_model_query() -> None:
    """SQLAlchemy 2 style only: `db.session.scalar(sa.select(...))`, never `Model.query`."""
    models_tree = ast.parse((APP_DIR / "models.py").read_text())
    model_names = {node.name for node in models_tree.body if isinstance(node, ast.ClassDef)}
    offenders = []
    for module, path in app_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "query"
                and isinstance(node.value, ast.Name)
                and node.value.id in model_names
            ):
                offenders.append(f"{module}:{node.lineno} {node.value.id}.query")
    assert offenders == []


def import_graph() -> dict[str, set[str]]:
    """Edges between app modules, minus a blueprint package's edges to its own modules.

    A blueprint package imports its `routes` at the bottom of `__init__` to register them, and
    `routes` imports `bp` from the package: that pair is Flask's registration idiom, not a
    layering cycle, so the package-to-child edge is left out (for blueprint packages only).
    """
    graph = {}
    for module in app_modules():
        registers_children = is_package(module) and matches(module, ("app.blueprints.*",))
        graph[module] = {
            target
            for target in imports_of(module).modules
            if target != module and not (registers_children and target.rpartition(".")[0] == module)
        }
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        if module in done:
            return None
        visiting.append(module)
        for target in sorted(graph[module]):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_no_import_cycles_between_app_modules() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


CLI_DIR = REPO / "kargo_cli"
CLI_ALLOWED_PACKAGES = {"__future__", "click", "kargo_cli"}


def test_the_command_line_is_only_an_http_client() -> None:
    """`kargo` speaks to the JSON API and nothing else: the standard library and Click only,
    never the Flask app, its services, models or database (it runs on machines without them)."""
    modules = sorted(CLI_DIR.rglob("*.py"))
    assert modules, "kargo_cli not found"
    offenders = []
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in CLI_ALLOWED_PACKAGES and top not in sys.stdlib_module_names:
                    offenders.append(f"{path.relative_to(REPO)}: import {name}")
    assert offenders == []
