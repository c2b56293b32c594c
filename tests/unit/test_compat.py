"""The private APIs behind obesity/compat/, held to what the code relies on: an upgrade that
changes one fails here, naming it, instead of deep inside a sweep, a check or a request."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from tests.helpers import ROOT


def test_the_optuna_sweepers_loop_has_what_the_resumable_study_overrides_and_calls():
    from obesity.compat.hydra_optuna_sweeper_impl import OptunaSweeperImpl, create_params_from_overrides

    params = {name: list(inspect.signature(getattr(OptunaSweeperImpl, name)).parameters)
              for name in ("_process_searchspace_config", "_parse_sweeper_params_config",
                           "_get_directions", "_configure_trials", "sweep")}
    assert params == {"_process_searchspace_config": ["self"], "_parse_sweeper_params_config": ["self"],
                      "_get_directions": ["self"], "sweep": ["self", "arguments"],
                      "_configure_trials": ["self", "trials", "search_space_distributions",
                                            "fixed_params", "fixed_overrides"]}
    space, fixed, fixed_overrides = create_params_from_overrides(
        ["model.max_depth=range(2,5)", "seed=3", "model.criterion=choice(gini,entropy)"])
    assert sorted(space) == ["model.criterion", "model.max_depth"] and fixed == {"seed": "3"}
    assert fixed_overrides == []


def test_the_joblib_launchers_config_becomes_joblibs_arguments():
    from obesity.compat.hydra_joblib_launcher import process_joblib_cfg

    cfg = {"n_jobs": 2, "backend": None, "prefer": "processes", "require": None, "verbose": 0,
           "timeout": None, "pre_dispatch": "2*n_jobs", "batch_size": "auto",
           "temp_folder": None, "max_nbytes": None, "mmap_mode": "r"}
    process_joblib_cfg(cfg)
    assert cfg["backend"] == "loky" and cfg["n_jobs"] == 2


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage")
def test_a_study_beats_for_its_trials_through_optunas_heartbeat():
    import optuna

    from obesity.compat.optuna_storage import record_heartbeat

    storage = optuna.storages.RDBStorage("sqlite:///:memory:", heartbeat_interval=60)
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    with storage.engine.connect() as db:
        assert db.exec_driver_sql("select count(*) from trial_heartbeats").scalar() == 0
        record_heartbeat(study, trial)  # what a stale-trial check of another worker reads
        assert db.exec_driver_sql("select trial_id from trial_heartbeats").scalars().all() == [
            trial._trial_id]
    with pytest.raises(TypeError, match="has no heartbeat"):
        record_heartbeat(optuna.create_study(), trial)  # in-memory storage: no heartbeats


def test_a_distribution_says_which_values_it_holds():
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from obesity.compat.optuna_distributions import holds

    assert holds(IntDistribution(2, 5), 3) and not holds(IntDistribution(2, 5), 9)
    assert holds(CategoricalDistribution(["gini", "entropy"]), "gini")
    assert not holds(CategoricalDistribution(["gini"]), "log_loss") and not holds(IntDistribution(2, 5), None)


def test_sklearn_names_a_bad_parameter_before_any_fit():
    from sklearn.ensemble import RandomForestClassifier

    from obesity.compat.sklearn_params import validate_params

    validate_params(RandomForestClassifier(n_estimators=3))
    with pytest.raises(ValueError, match="criterion"):
        validate_params(RandomForestClassifier(criterion="banana"))


def test_evidently_finds_its_drift_tests_by_name_and_column_kind():
    from obesity.compat.evidently_stattests import display_name, stattest

    assert stattest("wasserstein", numeric=True) is not None
    assert stattest("jensenshannon", numeric=False) is not None
    assert stattest("nope", numeric=True) is None
    assert "Wasserstein" in display_name("wasserstein", numeric=True)
    assert display_name("nope", numeric=False) == "nope"


def test_litestars_struct_schema_plugin_is_extended_where_it_was():
    from obesity.compat.litestar_openapi import StructSchemaPlugin

    assert list(inspect.signature(StructSchemaPlugin.to_openapi_schema).parameters) == [
        "self", "field_definition", "schema_creator"]


def test_uvicorns_protocol_has_the_hooks_the_head_deadline_extends():
    from obesity.compat.uvicorn_http import HttpToolsProtocol

    for hook in ("connection_made", "connection_lost", "on_message_begin", "on_headers_complete"):
        assert callable(getattr(HttpToolsProtocol, hook)), hook
    # the deadline is armed on the protocol's loop and closes its transport
    assert "self.loop" in inspect.getsource(HttpToolsProtocol.__init__)
    assert "self.transport = transport" in inspect.getsource(HttpToolsProtocol.connection_made)


def test_only_the_ray_plugins_own_deprecation_warning_is_hidden():
    import importlib
    import warnings

    from omegaconf import OmegaConf

    import hydra_plugins.hydra_ray_launcher._config as plugin_config
    from obesity.compat.hydra_ray_launcher import quiet_plugin_import

    def import_plugin():  # what Hydra's plugin scan does in a fresh process
        OmegaConf.clear_resolver("ray_pkg_version")
        importlib.reload(plugin_config)

    def deprecations(said: list) -> list[str]:  # (a reload also re-registers its configs)
        return [f"{Path(w.filename).name}: {str(w.message).splitlines()[0]}" for w in said
                if str(w.message).startswith("register_new_resolver")]

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        import_plugin()
        assert deprecations(said) == [
            "_config.py: register_new_resolver() is deprecated and will be removed in a future release."]
        said.clear()
        quiet_plugin_import()
        import_plugin()
        warnings.warn("register_new_resolver() is deprecated", UserWarning, stacklevel=1)
        # the same words from elsewhere: still said
        assert deprecations(said) == ["test_compat.py: register_new_resolver() is deprecated"]


def test_a_ray_task_gets_the_stores_that_are_set_and_the_warning_filter(monkeypatch):
    from omegaconf import OmegaConf

    from obesity.compat.hydra_ray_launcher import ray_node
    from obesity.config import schemas

    schemas.register()
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://db/optuna")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    launcher = OmegaConf.load(ROOT / "configs/hydra/launcher/ray_cluster.yaml")
    env = OmegaConf.to_container(launcher.ray.init.runtime_env, resolve=True)["env_vars"]
    assert env["OPTUNA_STORAGE"] == "postgresql://db/optuna" and "MLFLOW_TRACKING_URI" not in env
    assert env["PYTHONWARNINGS"].startswith("ignore:register_new_resolver() is deprecated:UserWarning:")
    assert ray_node() is None  # not a Ray worker
