"""The real config groups compose, validate against their schemas and fail naming the key."""

from __future__ import annotations

import dataclasses
import re

import pytest
import yaml
from sklearn.pipeline import Pipeline

from obesity.errors import ConfigError, ObesityError
from obesity.model import pipeline
from obesity.training import job as training
from tests.helpers import CONFIGS, ROOT, compose_train

MODELS = sorted(p.stem for p in (CONFIGS / "model").glob("*.yaml"))
DATA = sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml"))
# checked here, not inside the tests parametrized by these globs (an empty glob runs none of them)
assert set(MODELS) >= {"rf", "hgb", "lr", "et", "bmi_rule"}, MODELS
assert set(DATA) >= {"full", "lifestyle"}, DATA


def test_defaults_compose_to_rf_on_full_with_local_registry(tmp_path):
    cfg = compose_train([], tmp_path)
    assert (cfg.data.name, cfg.model.name, cfg.registry.name) == ("full", "rf", "local")
    assert cfg.model._target_ == "sklearn.ensemble.RandomForestClassifier"
    assert cfg.registry.tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert cfg.model.random_state == cfg.seed  # estimator randomness follows `seed`


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("data", DATA)
def test_every_model_and_data_config_builds_a_pipeline(model, data, tmp_path):
    cfg = compose_train([f"model={model}", f"data={data}"], tmp_path)
    if model == "bmi_rule" and not cfg.data.bmi:  # the rule is BMI: it needs Height and Weight
        with pytest.raises(ConfigError, match="model=bmi_rule needs Height, Weight"):
            pipeline.build(cfg)
        return
    built = pipeline.build(cfg)
    assert isinstance(built, Pipeline)
    estimator = type(built.named_steps["model"])
    assert estimator.__module__.startswith("sklearn." if model != "bmi_rule" else "obesity.model")
    assert ("bmi" in built.named_steps) == cfg.data.bmi


def test_overrides_reach_the_estimator(tmp_path):
    cfg = compose_train(["model=hgb", "data=lifestyle", "seed=7", "model.max_depth=12"], tmp_path)
    est = pipeline.build(cfg).named_steps["model"]
    assert (est.max_depth, est.random_state) == (12, 7)
    assert list(cfg.data.exclude) == ["Height", "Weight"]


def test_misspelt_key_fails_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"model.max_dept"):
        compose_train(["model=hgb", "model.max_dept=12"], tmp_path)


def test_wrong_type_fails_naming_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"model.n_estimators"):
        compose_train(["model.n_estimators=many"], tmp_path)


def test_unknown_model_lists_the_available_ones(tmp_path):
    with pytest.raises(ConfigError) as info:
        compose_train(["model=xgb"], tmp_path)
    assert str(info.value) == f"model=xgb: no such option; model is one of: {', '.join(sorted(MODELS))}"


def test_each_data_config_has_its_own_promotion_threshold(tmp_path):
    full, lifestyle = (compose_train([f"data={d}"], tmp_path).registry for d in ("full", "lifestyle"))
    assert full.promotion_threshold == 0.85 and lifestyle.promotion_threshold == 0.75
    assert compose_train(["data=lifestyle", "registry.promotion_threshold=0.8"],
                         tmp_path).registry.promotion_threshold == 0.8


def test_bmi_without_height_is_a_config_error(tmp_path):
    cfg = compose_train(["data=lifestyle", "data.bmi=true"], tmp_path)
    with pytest.raises(ConfigError, match=r"data.bmi"):
        pipeline.build(cfg)


def test_estimator_rejects_a_bad_value_with_a_clear_error(tmp_path):
    cfg = compose_train(["model=rf", "model.criterion=banana"], tmp_path)
    with pytest.raises(ConfigError, match=r"criterion"):
        pipeline.build(cfg)


def test_server_registry_takes_its_uri_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    cfg = compose_train(["registry=server"], tmp_path)
    assert cfg.registry.tracking_uri == "http://127.0.0.1:5999"


def test_server_registry_without_its_env_var_is_a_clear_error(tmp_path, monkeypatch):
    from obesity.training import job as training

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ConfigError, match=r"^registry\.tracking_uri: .*MLFLOW_TRACKING_URI.* not "
                                          r"found: registry=server needs its environment"):
        training.run(compose_train(["registry=server", "model=lr"], tmp_path))


@pytest.mark.parametrize("override, named", [
    ("data.test_size=1.5", "data.test_size=1.5"), ("data.test_size=0", "data.test_size=0"),
    ("data.test_size=0.999", "data.test_size=0.999"), ("data.test_size=-0.2", "data.test_size=-0.2"),
    ("cv_folds=1", "cv_folds=1"), ("cv_folds=0", "cv_folds=0"),
    ("cv_folds=5000", "cv_folds=5000"), ("data.split_seed=-1", "data.split_seed=-1"),
    ("seed=-3", "seed=-3"), ("n_jobs=0", "n_jobs=0"),
    ("data.exclude=[Nope]", "data.exclude=[Nope]"),
    ("data.exclude=[NObeyesdad]", "NObeyesdad is the label"),
    ("paths.outputs=/proc/x", "paths.outputs=/proc/x"),
])
def test_out_of_range_values_are_named_before_anything_is_opened(tmp_path, override, named):
    outputs = tmp_path / "o"
    cfg = compose_train(["model=lr", override], outputs)
    with pytest.raises(ObesityError, match=re.escape(named)) as error:
        training.run(cfg)
    assert "\n" not in str(error.value)
    assert not (outputs / "mlflow.db").exists()


def _schema_default(schema: type, key: str):
    value = next(f for f in dataclasses.fields(schema) if f.name == key)
    return value.default_factory() if value.default_factory is not dataclasses.MISSING else value.default


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("[dmr]*/*.yaml")), ids=lambda p: p.stem)
def test_option_files_hold_only_what_differs_from_their_schema(path):
    """configs/{data,model,monitor,registry}/*.yaml pick a schema and say what is theirs; the defaults
    are written once, in obesity/config/schemas.py."""
    from obesity.config import schemas

    loaded = yaml.safe_load(path.read_text())
    group = path.parent.name
    schema = {"data": schemas.DataConfig, "registry": schemas.RegistryConfig,
              "monitor": schemas.MonitorConfig}.get(group) \
        or schemas.MODEL_SCHEMAS[path.stem]
    repeated = [key for key, value in loaded.items()
                if key != "defaults" and value == _schema_default(schema, key)]
    assert repeated == []


def test_the_forest_sweeps_share_one_search_space():
    from hydra import compose, initialize_config_dir

    from obesity.config.compose import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR)):
        rf, et = (compose("train", [f"sweep={m}"], return_hydra_config=True) for m in ("rf", "et"))
    assert (rf.model.name, et.model.name) == ("rf", "et")
    assert rf.hydra.sweeper.params == et.hydra.sweeper.params
    assert "model.criterion" in rf.hydra.sweeper.params
    assert rf.hydra.sweeper.custom_search_space == "obesity.sweep.search_spaces.forest"


def test_a_process_that_scans_the_plugins_again_registers_the_sweeper_quietly(recwarn):
    """A Ray or joblib worker scans Hydra's plugins again: Hydra 1.4 warns on a second
    registration of one name, and 1.5 refuses it."""
    from obesity.sweep import sweeper

    sweeper.register()
    sweeper.register()
    assert not [w for w in recwarn if "already registered" in str(w.message)]
