"""The package's shape: imports point one way, DVC reruns a stage when code it runs changes, and
models saved before the move into subpackages still load."""

from __future__ import annotations

import runpy

import pytest
import yaml

from tests.conftest import ROOT, compose_train

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


IMPORT_EVERYTHING = """
import importlib, json, os, pkgutil, sys
import obesity
names = sorted(m.name for m in pkgutil.walk_packages(obesity.__path__, "obesity.")
               if not m.name.endswith("__main__"))
if sys.argv[1] == "libraries":  # which third-party packages importing the package loads
    for name in names:
        importlib.import_module(name)
    ours = ("obesity", "hydra_plugins.obesity_")
    print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} - {"obesity", "hydra_plugins"}
                            | {m for m in sys.modules  # other plugins in Hydra's namespace
                               if m.startswith("hydra_plugins.") and not m.startswith(ours)})))
    raise SystemExit
for top in json.loads(sys.argv[2]):  # theirs first: what they do on import is not ours
    try:
        importlib.import_module(top)
    except Exception:
        pass
import sqlalchemy.event.registry as events
from hydra.core.config_store import ConfigStore
def stored(node, prefix=""):  # every config in the store, by its path
    for key, value in node.items():
        yield from stored(value, f"{prefix}{key}/") if isinstance(value, dict) else [prefix + key]
def state():
    return (dict(os.environ), {k: len(v) for k, v in events._key_to_collection.items()},
            sorted(stored(ConfigStore.instance().repo)))
before = state()
for name in names:
    importlib.import_module(name)
after = state()
print(json.dumps({"modules": len(names),
                  "environ": sorted(k for k in after[0] if before[0].get(k) != after[0][k]),
                  "listeners": sorted(str(k) for k in after[1] if before[1].get(k) != after[1][k]),
                  "config_store": sorted(set(after[2]) - set(before[2]))}))
"""


def test_importing_the_package_changes_no_global_state():
    """Every module of the package imported in a fresh interpreter (after the libraries it
    uses, whose own import-time doings are theirs) leaves the environment, SQLAlchemy's event
    registry and Hydra's ConfigStore as they were: settings happen in the entrypoints
    (obesity.environment, sqlite_tuning.install, schemas.register), the only registration on
    import is hydra_plugins/ (Hydra's documented plugin entry point), checked last."""
    import json
    import subprocess
    import sys

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-c", IMPORT_EVERYTHING, *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout.strip().splitlines()[-1]

    found = json.loads(run("check", run("libraries")))
    assert found["modules"] > 80
    assert (found["environ"], found["listeners"], found["config_store"]) == ([], [], []), found
    registered = subprocess.run(
        [sys.executable, "-c", "from hydra.core.config_store import ConfigStore; "
         "import hydra_plugins.obesity_schemas, hydra_plugins.obesity_sweeper; "
         "print(sorted(ConfigStore.instance().repo))"], cwd=ROOT, capture_output=True, text=True)
    assert "train_schema.yaml" in registered.stdout and "schema" in registered.stdout
