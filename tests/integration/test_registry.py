"""The guarded promotion rules and the registry CLI, on real models in a tmp registry."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import threading

import pytest

from tests.helpers import RAW_CSV, ROOT, compose_train, mlflow_client, register, registry_cli, wait_until


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """v1 good (champion), v2 approved but worse, v3 rejected (below the threshold)."""
    outputs = tmp_path_factory.mktemp("registry")
    lenient = "registry.promotion_threshold=0.5"
    v1 = register(outputs, ["model=rf", "model.n_estimators=60"])
    v2 = register(outputs, ["model=rf", "model.n_estimators=5", "model.max_depth=3", lenient])
    v3 = register(outputs, ["model=lr", "model.C=0.001"])
    return outputs, (v1, v2, v3)


def aliases(outputs) -> dict[str, str]:
    client = mlflow_client(outputs)
    return {k: str(v) for k, v in client.get_registered_model("obesity_full").aliases.items()}


def test_first_approved_version_becomes_champion(registry):
    _, (v1, _, _) = registry
    assert (v1.version, v1.validation_status, v1.champion) == ("1", "approved", "1")
    assert v1.why == "no champion yet"


def test_a_worse_candidate_never_becomes_champion(registry):
    outputs, (_, v2, v3) = registry
    assert v2.validation_status == "approved" and v2.champion is None
    assert "champion stays version 1" in v2.why
    # the decision says why with the numbers, and the version keeps them as tags
    figures = re.search(r"candidate ([-+]\d\.\d{4}) test_f1_macro \(95% CI ([-+]\d\.\d{4}) … "
                        r"([-+]\d\.\d{4}), McNemar p=([\d.e-]+)\): not enough evidence "
                        r"\(needs lower bound > margin 0, guard=better\)", v2.why)
    assert figures, v2.why
    tags = mlflow_client(outputs).get_model_version("obesity_full", "2").tags
    assert tags["guard"] == "better" and tags["guard_against"] == "1"
    assert float(tags["guard_diff"]) == pytest.approx(float(figures[1]), abs=6e-5)
    assert float(tags["guard_ci_low"]) == pytest.approx(float(figures[2]), abs=6e-5)
    assert float(tags["guard_ci_low"]) < float(tags["guard_diff"]) < float(tags["guard_ci_high"])
    # the point estimate is the difference of the two versions' logged test scores (same rows)
    v1_tags = mlflow_client(outputs).get_model_version("obesity_full", "1").tags
    assert float(tags["guard_diff"]) == pytest.approx(
        float(tags["test_f1_macro"]) - float(v1_tags["test_f1_macro"]), abs=2e-6)
    assert v3.validation_status == "rejected" and v3.champion is None
    assert "< threshold 0.85; never champion" in v3.why
    assert aliases(outputs)["champion"] == "1"
    from obesity.registry.aliases import alias_log

    moves = [(e["alias"], str(e["to"])) for e in alias_log(mlflow_client(outputs), "obesity_full")]
    # challenger always names the newest candidate: it moved to each version as it came
    assert [to for alias, to in moves if alias == "challenger"][:3] == ["1", "2", "3"]


def test_cli_promote_is_guarded_and_rollback_restores(registry):
    outputs, _ = registry
    from obesity.registry.aliases import alias_log

    def rollbacks() -> int:  # other tests' too
        return sum(e["kind"] == "rollback" for e in alias_log(mlflow_client(outputs), "obesity_full"))

    before = rollbacks()
    refused = registry_cli(outputs, "promote", "2")
    assert refused.returncode == 1 and "champion stays version 1" in refused.stderr
    never = registry_cli(outputs, "promote", "3", "--force")
    assert never.returncode == 1 and "rejected" in never.stderr
    forced = registry_cli(outputs, "promote", "2", "--force")
    assert forced.returncode == 0, forced.stderr
    assert aliases(outputs)["champion"] == "2"
    back = registry_cli(outputs, "rollback")
    assert back.returncode == 0 and "champion -> version 1" in back.stdout
    assert aliases(outputs)["champion"] == "1"
    nothing = registry_cli(outputs, "rollback")
    assert nothing.returncode == 1 and "no previous champion" in nothing.stderr
    history = registry_cli(outputs, "history")
    assert history.returncode == 0 and rollbacks() == before + 1

    last = alias_log(mlflow_client(outputs), "obesity_full")[-1]  # the rollback entry itself
    assert {k: str(last[k]) for k in ("alias", "from", "to", "kind")} == {
        "alias": "champion", "from": "2", "to": "1", "kind": "rollback"}
    assert last["who"] in history.stdout and last["when"] in history.stdout
    assert "NaN" not in history.stdout and " 1.0 " not in history.stdout  # versions as written
    header = registry_cli(outputs, "versions").stdout.splitlines()[0].split()
    assert {"drift", "drift_share"} <= set(header)  # the monitor's verdicts (docs/monitoring.md)


def test_cli_tables_compare_and_best(registry):
    outputs, _ = registry
    versions = registry_cli(outputs, "versions")
    assert versions.returncode == 0
    lines = versions.stdout.strip().splitlines()
    assert len(lines) >= 4 and "test_f1_macro" in lines[0] and "data_md5" in lines[0]
    assert "champion" in lines[1] and "rejected" in lines[3]
    listed = registry_cli(outputs, "list")
    assert "obesity_full" in listed.stdout and "champion=v1" in listed.stdout
    best = registry_cli(outputs, "best", "--metric", "test_f1_macro")
    assert best.returncode == 0 and best.stdout.startswith("version 1:")
    compare = registry_cli(outputs, "compare", "1", "2")
    assert compare.returncode == 0, compare.stderr
    assert "test_f1_macro" in compare.stdout and "label agreement" in compare.stdout
    agreement = float(compare.stdout.split("label agreement ")[1].split()[0])
    assert 0 < agreement < 1
    # the guard's figures for 2 - 1 on the same rows, and both margins over the BMI rule
    assert re.search(r"version 2 - version 1: [-+]\d\.\d{4} test_f1_macro \(95% CI [-+]\d\.\d{4} … "
                     r"[-+]\d\.\d{4}, McNemar p=", compare.stdout), compare.stdout
    assert "the guard (better) would say: keep" in compare.stdout
    assert re.search(r"BMI rule \(no learning\) test_f1_macro 0\.\d{4}: version 1 [-+]0\.\d{4}, "
                     r"version 2 [-+]0\.\d{4}", compare.stdout)


def test_cli_alias_moves_and_refuses_champion(registry):
    outputs, _ = registry
    assert registry_cli(outputs, "alias", "staging", "2").returncode == 0
    assert aliases(outputs)["staging"] == "2"
    refused = registry_cli(outputs, "alias", "champion", "2")
    assert refused.returncode == 1 and "promote" in refused.stderr


def test_cli_unknown_version_and_empty_registry(registry, tmp_path):
    outputs, _ = registry
    unknown = registry_cli(outputs, "promote", "42")
    assert unknown.returncode == 1 and "no version '42'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    empty = registry_cli(tmp_path, "list")
    assert empty.returncode == 0 and "registry is empty" in empty.stdout
    for command in (["versions"], ["rollback"], ["best"]):
        proc = registry_cli(tmp_path, *command)
        assert proc.returncode == 1 and "no registered model 'obesity_full' yet" in proc.stderr


@pytest.mark.slow
def test_cli_as_a_process_exits_non_zero_with_one_clear_line(registry):
    outputs, _ = registry
    proc = subprocess.run(
        [sys.executable, "-m", "obesity.registry", "-o", f"paths.outputs={outputs}", "promote", "x"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    known = sorted(int(v.version) for v in
                   mlflow_client(outputs).search_model_versions("name = 'obesity_full'"))
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: obesity_full: no version 'x' (versions: {', '.join(map(str, known))})")
    helped = subprocess.run([sys.executable, "-m", "obesity.registry", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert helped.returncode == 0
    for command in ("list", "versions", "compare", "best", "promote", "alias", "rollback"):
        assert command in helped.stdout


def test_cli_register_refits_a_finished_run_and_guards_the_champion(registry):
    outputs, _ = registry
    client = mlflow_client(outputs)
    v1, v2 = (client.get_model_version("obesity_full", v) for v in ("1", "2"))
    count = len(client.search_model_versions("name = 'obesity_full'"))
    # the champion's own run: the same model on the same data is never registered again
    again = registry_cli(outputs, "register", v1.run_id)
    assert again.returncode == 0 and "is champion version 1 again" in again.stdout, again
    assert len(client.search_model_versions("name = 'obesity_full'")) == count
    proc = registry_cli(outputs, "-o", "registry.promotion_threshold=0.5", "register", v2.run_id)
    assert proc.returncode == 0, proc.stderr
    newest = max(client.search_model_versions("name = 'obesity_full'"), key=lambda v: int(v.version))
    assert newest.tags["refit_of"] == v2.run_id
    # the same config and seed again: the same test score, which does not beat the champion
    assert newest.tags["test_f1_macro"] == v2.tags["test_f1_macro"]
    assert "champion stays version 1" in proc.stdout
    assert registry_cli(outputs, "register", "nope").returncode == 1


def test_each_data_config_has_its_own_registered_model(registry):
    outputs, _ = registry
    before = aliases(outputs)
    lifestyle = register(outputs, ["model=lr", "data=lifestyle", "registry.promotion_threshold=0.3"])
    assert (lifestyle.version, lifestyle.champion) == ("1", "1")  # no full model to compete with
    client = mlflow_client(outputs)
    assert client.get_model_version_by_alias("obesity_lifestyle", "champion").version in (1, "1")
    assert aliases(outputs) == before


class Killed(BaseException):
    """`kill -9` at this point: nothing of the killed call runs after it (our code catches
    Exception, never BaseException)."""


def test_a_promotion_killed_before_its_aliases_moved_is_finished_by_the_rerun(tmp_path, monkeypatch):
    from obesity.registry import aliases as alias_moves
    from obesity.registry import policy, promote
    from obesity.training import job as training

    cfg = compose_train(["model=lr", "cv_folds=2"], tmp_path)
    client = mlflow_client(tmp_path)
    best = client.get_run(training.run(cfg).run_id)  # a finished run, as a sweep's best trial is
    decide_version = policy.decide_version

    def killed(*args, **kwargs):
        raise Killed

    monkeypatch.setattr(promote, "decide_version", killed)  # right after register_model
    with pytest.raises(Killed):
        promote.promote_run(cfg, best)
    monkeypatch.setattr(promote, "decide_version", decide_version)
    [version] = client.search_model_versions("name = 'obesity_full'")
    assert client.get_registered_model("obesity_full").aliases == {}
    assert "onnx" not in version.tags and policy.DECIDED_TAG not in version.tags

    finished = promote.promote_run(cfg, best)  # the rerun of the same sweep's end
    assert (finished.version, finished.champion) == ("1", "1")
    assert aliases(tmp_path) == {"champion": "1", "challenger": "1"}
    version = client.get_model_version("obesity_full", "1")
    assert version.tags["onnx"] == "verified" and version.tags[policy.DECIDED_TAG]
    assert [(e["alias"], e["to"]) for e in alias_moves.alias_log(client, "obesity_full")] == \
        [("challenger", "1"), ("champion", "1")]

    again = promote.promote_run(cfg, best)  # decided exactly once
    assert again.why == "registered already"
    assert len(alias_moves.alias_log(client, "obesity_full")) == 2
    assert len(client.search_model_versions("name = 'obesity_full'")) == 1


@pytest.mark.parametrize("second", [{"command": "alias", "name": "canary", "version": "1"},
                                    {"command": "rollback"}])
def test_alias_moves_on_one_model_are_serialised(registry, monkeypatch, second):
    """Two moves that both want the alias log at once. The first, having read the log, waits
    until the second either reads it too (nothing serialises them: both would write the same
    log index) or is seen blocked on the registry lock; then it goes on, and the log stays
    complete and contiguous. The wait ends on either event, never on a fixed time."""
    import fcntl
    from types import SimpleNamespace

    from obesity.errors import RegistryError
    from obesity.registry import aliases
    from obesity.registry.commands import COMMANDS
    from obesity.stores import locks

    outputs, _ = registry
    cfg = compose_train([], outputs)  # composed once: Hydra's compose is not thread-safe
    client = mlflow_client(outputs)
    before = aliases.alias_log(client, "obesity_full")
    read_log = aliases.alias_log
    contended = threading.Event()  # a move found the registry lock taken and waits for it
    readers: list[str] = []

    def flock(handle, operation):
        if operation == fcntl.LOCK_EX and "registry" in handle.name:
            try:
                return fcntl.flock(handle, operation | fcntl.LOCK_NB)
            except BlockingIOError:
                contended.set()
        return fcntl.flock(handle, operation)

    monkeypatch.setattr(locks, "fcntl", SimpleNamespace(
        flock=flock, LOCK_EX=fcntl.LOCK_EX, LOCK_UN=fcntl.LOCK_UN))

    def log_read_at_the_same_moment(client_, name):
        entries = read_log(client_, name)
        readers.append(threading.current_thread().name)
        if len(readers) == 1:
            assert wait_until(lambda: contended.is_set() or len(readers) > 1, timeout=120)
        return entries
    monkeypatch.setattr(aliases, "alias_log", log_read_at_the_same_moment)
    codes = {}

    def run(key: str, command: str, **args: str) -> None:  # what the CLI's main calls
        try:
            COMMANDS[command](cfg, argparse.Namespace(**args))
            codes[key] = 0
        except RegistryError:  # e.g. nothing left to roll back
            codes[key] = 1

    commands = {"first": {"command": "alias", "name": "staging", "version": "1"}, "second": second}
    threads = [threading.Thread(target=run, args=(k,), kwargs=c) for k, c in commands.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    monkeypatch.setattr(aliases, "alias_log", read_log)
    after = read_log(client, "obesity_full")
    moved = sum(code == 0 for code in codes.values())
    assert codes["first"] == 0 and len(after) == len(before) + moved
    tags = client.get_registered_model("obesity_full").tags
    assert sorted(k for k in tags if k.startswith("alias_log.")) == \
        [f"alias_log.{i:06d}" for i in range(len(after))]
    assert contended.is_set()  # the second waited for the lock while the first was inside
    if second["command"] == "rollback" and codes["second"] == 0:  # leave champion where it was
        aliases.set_alias(client, compose_train([], outputs).registry, "champion",
                            after[-1]["from"], "test: undo the rollback")


def test_a_changed_data_file_is_never_taken_for_a_versions_test_split(tmp_path):
    from obesity.errors import DataError
    from obesity.registry import policy

    data = tmp_path / "data.csv"
    shutil.copy(RAW_CSV, data)
    registered = register(tmp_path, ["model=lr", f"data.path={data}"])
    version = mlflow_client(tmp_path).get_model_version(
        "obesity_full", registered.version)
    assert len(policy.test_split_of(version).y_test) == 418
    data.write_text("".join(data.read_text().splitlines(keepends=True)[:-1]))  # a new version
    with pytest.raises(DataError, match="is not the data obesity_full version 1 was trained on"):
        policy.test_split_of(version)


def test_any_promotion_metric_is_tagged_and_compared(tmp_path):
    """Not only the metrics of a fixed list: decide() reads the promotion metric's tag."""
    metric = "test_recall_Normal_Weight"
    rules = [f"registry.promotion_metric={metric}", "registry.promotion_threshold=0.1"]
    register(tmp_path, ["model=lr", *rules])
    second = register(tmp_path, ["model=lr", "model.C=0.05", *rules])
    v1 = mlflow_client(tmp_path).get_model_version("obesity_full", "1")
    assert 0 < float(v1.tags[metric]) <= 1
    assert metric in second.why and "nan" not in second.why


def _table(card: str, heading: str) -> list[list[str]]:
    """The rows of the markdown table under `heading` in a card."""
    section = card.split(heading, 1)[1]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    rows = []
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue
        rows.append(cells)
        if not section.split(line, 1)[1].lstrip(" ").startswith(("\n|", "|")):
            break
    return rows


def test_every_number_in_a_versions_card_is_what_its_run_logged(registry):
    outputs, _ = registry
    shown = registry_cli(outputs, "card", "1")
    assert shown.returncode == 0, shown.stderr
    card = shown.stdout
    client = mlflow_client(outputs)
    version = client.get_model_version("obesity_full", "1")
    run = client.get_run(version.run_id)
    metrics, params = run.data.metrics, run.data.params
    for section in ("Intended use", "Data", "Input columns", "Test metrics", "Per class (test)",
                    "Promotion", "Reproduce", "ONNX twin", "Limitations", "Confusion matrix"):
        assert f"\n# {section}" in card, section
    overall = dict(row for row in _table(card, "Test metrics")[1:])
    assert set(overall) == {"test_accuracy", "test_f1_macro", "test_qwk", "test_class_distance"}
    for name, value in overall.items():
        assert value == f"{metrics[name]:.4f}", name
    header, *per_class = _table(card, "Per class (test)")
    assert len(per_class) == 7
    for row in per_class:
        cls = row[0]
        for column, value in zip(header[1:4], row[1:4], strict=True):
            assert value == f"{metrics[f'test_{column}_{cls}']:.4f}", (cls, column)
        low, high = (float(x) for x in row[4].split(" … "))
        assert low <= float(row[3]) <= high
    for row in _table(card, "Intervals")[1:]:
        assert row[1] == f"{metrics[row[0]]:.4f}" and float(row[2]) <= float(row[1]) <= float(row[3])
    assert f"data md5 `{version.tags['data_md5']}`" in card
    assert f"{params['data.rows_raw']} rows, {params['data.rows_dedup']} after" in card
    assert f"{float(version.tags['baseline_test_f1_macro']):.4f}" in card
    assert f"{float(version.tags['margin_over_baseline']):+.4f}" in card
    assert version.tags["promotion"] in card  # the guard's decision
    assert "python -m obesity.train data=full model=rf model.n_estimators=60 cv_folds=2\n" in card
    assert f"`{version.tags['onnx']}`" in card
    assert "SMOTE" in card and "Not a diagnosis" in card
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "card")}
    assert artifacts == {"card/README.md", "card/confusion_matrix_test.png",
                         "card/calibration_test.png", "card/permutation_importance_test.png",
                         "card/permutation_importance_test.csv"}
    importance = _table(card, "Permutation importance (test)")
    assert importance[0] == ["column", "mean", "std"] and len(importance) == 17
    assert importance[1][0] == "Weight"  # the labels are BMI classes
    assert "calibration_test.png" in card


def test_the_baseline_margin_is_measured_on_the_same_rows(registry):
    from obesity.data.split import split_of
    from obesity.model.baseline import baseline_scores

    outputs, _ = registry
    tags = mlflow_client(outputs).get_model_version("obesity_full", "1").tags
    _, split = split_of(compose_train([], outputs).data)
    baseline = baseline_scores(split.X_test, split.y_test, "test")["test_f1_macro"]
    assert float(tags["baseline_test_f1_macro"]) == pytest.approx(baseline, abs=1e-6)
    assert float(tags["margin_over_baseline"]) == pytest.approx(
        float(tags["test_f1_macro"]) - baseline, abs=2e-6)
    assert 0.85 < baseline < 0.97  # the label's own definition, learned from nothing


def test_card_of_an_unknown_version_or_one_without_a_card_is_one_line(registry):
    outputs, _ = registry
    missing = registry_cli(outputs, "card", "9")
    assert missing.returncode == 1 and "no version '9'" in missing.stderr
    client = mlflow_client(outputs)
    assert client.get_model_version("obesity_full", "3").tags["card"] == "card/README.md"
    client.delete_model_version_tag("obesity_full", "3", "card")  # as registered before cards
    older = registry_cli(outputs, "card", "3")
    assert older.returncode == 1
    assert older.stderr.strip() == ("error: obesity_full version 3 has no model card "
                                    "(registered before cards existed)")
