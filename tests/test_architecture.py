"""The package's layering (docs/architecture.md), read from its import statements.

Every ``import`` and ``from ... import`` in the package counts, including the lazy ones
inside functions: a lazy import is still a dependency, only a hidden one.
"""

import ast
from pathlib import Path

import django_textclass

PACKAGE = Path(django_textclass.__file__).parent

#: The core: settings, types, models, backends, services, tasks. It never imports a feature.
CORE = (
    "conf",
    "exceptions",
    "signals",
    "types",
    "policies",
    "models",
    "backends",
    "services",
    "dispatch",
    "checks",
    "tasks",
    "rollup.days",
)
#: Features built on the core (registered content, the admin, the REST API, health, commands).
FEATURES = ("content", "registry", "rules", "admin", "api", "health", "management")


def module_names():
    names = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def import_edges():
    """``{module: {module it imports}}`` over the package's own modules."""
    names = module_names()

    def resolve(name):
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name

    edges = {name: set() for name in names}
    for name, path in names.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                found = resolve(target)
                if found and found not in (name, "django_textclass"):
                    edges[name].add(found)
    return edges


def cycles(edges):
    """The strongly connected sets of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def within(name, prefixes):
    short = name.removeprefix("django_textclass.")
    return any(short == prefix or short.startswith(prefix + ".") for prefix in prefixes)


def test_imports__form_no_circle():
    assert cycles(import_edges()) == []


def test_imports__core_never_imports_a_feature():
    edges = import_edges()
    wrong = sorted(
        (name, target)
        for name, targets in edges.items()
        if within(name, CORE)
        for target in targets
        if within(target, FEATURES)
    )
    assert wrong == []


def test_imports__the_broker_transports_stand_alone():
    """``brokers/`` is chosen by a broker URL: no module of ours imports it, it imports none."""
    edges = import_edges()
    brokers = ("brokers",)
    into = sorted(
        name
        for name, targets in edges.items()
        if not within(name, brokers)
        for target in targets
        if within(target, brokers)
    )
    out_of = sorted(
        target
        for name, targets in edges.items()
        if within(name, brokers)
        for target in targets
        if not within(target, brokers)
    )
    assert "django_textclass.brokers.filesystem" in edges
    assert (into, out_of) == ([], [])


def test_imports__the_checks_see_lazy_imports():
    """The reader itself: a lazy import inside a function is an edge, and a circle is found."""
    edges = import_edges()
    assert "django_textclass.rollup" in edges["django_textclass.tasks"]  # inside roll_up()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_old_import_paths__name_the_same_objects():
    """The documented paths from before the split keep working, and are not copies."""
    from django_textclass import content, dispatch, registry, rules
    from django_textclass.content import reading
    from django_textclass.content import registry as content_registry
    from django_textclass.content import rules as content_rules
    from django_textclass.services import dispatch as services_dispatch

    assert registry is content_registry and registry.site is content_registry.site
    assert rules is content_rules and rules.Rule is content_rules.Rule
    assert dispatch is services_dispatch
    assert content.ClassificationResults is reading.ClassificationResults
    assert content.ClassifiedQuerySet is reading.ClassifiedQuerySet
    assert registry.RegistrationError.__module__ == "django_textclass.exceptions"
    assert registry.Registration.__module__ == "django_textclass.content.registration"


def test_tests__never_import_a_test_module_or_a_conftest():
    """What tests share lives in helpers modules; a test module is only collected."""
    tests = Path(__file__).parent
    wrong = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                last = name.rsplit(".", 1)[-1]
                if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                    wrong.append((str(path.relative_to(tests)), name))
    assert wrong == []


def test_functions__carry_no_type_hints():
    """The package documents types in docstrings, not annotations (docs/architecture.md)."""
    annotated = []
    for name, path in module_names().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = node.args
            params = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            if node.returns or any(p is not None and p.annotation for p in params):
                annotated.append(f"{name}.{node.name}")
    assert annotated == []
