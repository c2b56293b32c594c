"""The package's shape: imports point one way, DVC reruns a stage when code it runs changes, and
models saved before the move into subpackages still load."""

from __future__ import annotations

from tests.helpers import ROOT

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
