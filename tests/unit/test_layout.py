"""The package's shape: imports point one way, DVC reruns a stage when code it runs changes, and
models saved before the move into subpackages still load."""

from __future__ import annotations

import runpy

import pytest
import yaml

from tests.helpers import ROOT, compose_train

GRAPH = runpy.run_path(str(ROOT / "scripts" / "import_graph.py"))  # the script anyone can run
OLD_MODEL = ROOT / "tests" / "data" / "lr_saved_before_the_layout.skops"


def test_no_import_cycle_between_modules_or_subpackages():
    edges = GRAPH["graph"](ROOT / "obesity")
    assert "obesity.registry.policy" in edges and "obesity.training.job" in edges
    assert GRAPH["cycles"](edges) == []
    assert GRAPH["cycles"](GRAPH["folders"](edges)) == []


def test_the_cycle_check_finds_a_cycle_even_through_a_deferred_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    for path in (package / "__init__.py", package / "sub" / "__init__.py"):
        path.write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("def f():\n    from pkg import a\n")
    edges = GRAPH["graph"](package)
    assert GRAPH["cycles"](edges) == [["pkg.a", "pkg.sub.b"]]
    assert GRAPH["cycles"](GRAPH["folders"](edges)) == [["pkg.a", "pkg.sub"]]


def test_no_module_is_found_by_name_and_the_runtime_never_imports_the_test_fixtures():
    """What the graph cannot see (a `sys.modules` lookup) and what it must not hold (the runtime
    depending on obesity.testing)."""
    assert GRAPH["hidden_imports"](ROOT / "obesity") == []
    assert GRAPH["testing_imports"](GRAPH["graph"](ROOT / "obesity"), "obesity") == []


def test_private_apis_of_other_libraries_are_used_in_obesity_compat_only():
    assert GRAPH["private_uses"](ROOT / "obesity") == []


def test_the_checks_find_a_lookup_by_name_a_fixture_import_and_a_private_api(tmp_path):
    package = tmp_path / "pkg"
    for folder in (package, package / "testing", package / "compat"):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "__init__.py").write_text("")
    (package / "a.py").write_text("import sys\n\ndef f():\n    return sys.modules.get('pkg.b')\n")
    (package / "b.py").write_text("from pkg.testing import servers\n")
    (package / "c.py").write_text("from optuna.storages._heartbeat import B\n\nstudy._storage\n"
                                  "self._mine, cfg._target_\n")
    (package / "compat" / "d.py").write_text("from litestar._openapi import x\n\nx._y\n")
    assert GRAPH["hidden_imports"](package) == ["pkg/a.py:4 pkg.b"]
    assert GRAPH["testing_imports"](GRAPH["graph"](package), "pkg") == ["pkg.b -> pkg.testing"]
    assert GRAPH["private_uses"](package) == ["pkg/c.py:1 import optuna.storages._heartbeat",
                                              "pkg/c.py:3 study._storage"]


def _imported(module: str, edges: dict[str, set[str]]) -> set[str]:
    """`module`, everything it imports (transitively), and the packages those live in: their
    __init__ runs too, but what `obesity/__init__.py` imports only when an API name is first
    used (its lazy `__getattr__`) does not run for a stage."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        seen.update(".".join(parts[:i]) for i in range(1, len(parts)))
        todo += edges[name]
    return seen


@pytest.mark.parametrize("stage", ["prepare", "train", "evaluate"])
def test_every_file_a_dvc_stage_runs_is_one_of_its_deps(stage):
    """A change to any code a stage runs must rerun it: its deps cover the modules it imports."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    module = spec["cmd"].split(" -m ")[1].split()[0]
    deps = [ROOT / d for d in spec["deps"] if not d.startswith("${")]
    files = GRAPH["modules"](ROOT / "obesity")
    uncovered = [name for name in sorted(_imported(module, GRAPH["graph"](ROOT / "obesity")))
                 if not any(files[name] == d or d in files[name].parents for d in deps)]
    assert uncovered == [], f"dvc.yaml stage {stage} runs these without listing them as deps"


def test_a_model_saved_before_the_layout_still_loads_and_answers_as_before():
    """skops stored the BMI step as `obesity.features.AddBMI` (its path before the move)."""
    import skops.io

    from obesity.data.split import split_of
    from obesity.model import pipeline
    from obesity.model.features import AddBMI
    from obesity.model.files import load_file

    assert "obesity.features.AddBMI" in skops.io.get_untrusted_types(file=OLD_MODEL)
    old = load_file(OLD_MODEL)
    assert isinstance(old.steps[0][1], AddBMI)
    cfg = compose_train(["model=lr"])  # the config it was saved with, trained by today's code
    _, split = split_of(cfg.data)
    new = pipeline.build(cfg).fit(split.X_train, split.y_train)
    assert (old.predict(split.X_test) == new.predict(split.X_test)).all()
    assert (old.predict(split.X_test) == split.y_test).mean() > 0.85


