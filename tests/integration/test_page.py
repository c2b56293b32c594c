"""The page for people (GET /) in a real browser, and the CSV endpoint behind its upload.

One real `python -m obesity.serve` on a store that has no model yet: the first test sees the page
say how to get one; the `champion` fixture then registers one, which the service picks up. The
browser is Debian's Chromium (scripts/setup.sh), driven headless by Playwright; every state is
saved as a screenshot in the test's tmp dir.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sqlite3
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, sync_playwright

from obesity.data.contract import CLASSES, FEATURE_NAMES, FEATURES, Numeric
from obesity.data.split import split_of
from obesity.serving.page import GROUPS, words
from tests.helpers import compose_serve, compose_train, register, serving

pytestmark = pytest.mark.slow  # a real service, a real browser: ~25 s
CHROMIUM = "/usr/bin/chromium"  # Debian's package; never a browser Playwright downloads
BATCH_LIMIT = 60
OUTPUTS = ["prediction", *(f"probability_{c}" for c in CLASSES)]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("page")


@pytest.fixture(scope="module")
def server(store):
    """The service on an empty store: it listens (/health), with no model."""
    with serving(store, "reload_interval_s=0.2", f"batch_limit={BATCH_LIMIT}", until="/health") as base:
        yield base


@pytest.fixture(scope="module")
def champion(server, store):
    """The first champion appears (rf, 60 trees): the service loads it within its poll."""
    register(store, ["model=rf", "model.n_estimators=60"])
    deadline = time.monotonic() + 90
    while httpx.get(f"{server}/ready").status_code != 200:
        assert time.monotonic() < deadline, "the service did not load the first champion in 90 s"
        time.sleep(0.2)
    from obesity.api import load_champion

    return load_champion(compose_train([], store))


@pytest.fixture(scope="module")
def people(store):
    """Real rows the model never saw: the served data config's held-out test split, with labels."""
    _, split = split_of(compose_serve(store).data)
    frame = split.X_test.head(50).copy()
    frame["NObeyesdad"] = split.y_test.head(50).to_numpy()
    return frame


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server, tmp_path):
    """A fresh tab that must end with no script error and no resource it failed to get."""
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("response", lambda r: errors.append(f"{r.status} {r.url}")
           if r.request.method == "GET" and r.status >= 400 else None)
    yield tab
    context.close()
    assert not errors, errors


def shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000


def fill(page: Page, person: dict) -> None:
    for name, value in person.items():
        if name not in FEATURE_NAMES:
            continue
        if isinstance(value, str):
            page.select_option(f"#f-{name}", value)
        else:
            page.fill(f"#f-{name}", repr(float(value)))


def write_csv(frame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_with_no_champion_the_page_says_how_to_get_one(page, server, tmp_path):
    deadline = time.monotonic() + 60  # the first look into the (empty) registry is done
    while "sweep=rf" not in (ready := httpx.get(f"{server}/ready")).text:
        assert ready.status_code == 503 and time.monotonic() < deadline, ready.text
        time.sleep(0.1)
    page.goto(server)
    notice = page.locator("#no-model")
    assert notice.inner_text().startswith("No model yet: obesity_full@champion does not exist")
    assert "python -m obesity.train -m sweep=rf" in notice.inner_text()
    page.click("#person button[type=submit]")  # the form still works: it says the same
    page.wait_for_selector("#summary p")
    assert "python -m obesity.train -m sweep=rf" in page.inner_text("#summary")
    shot(page, tmp_path, "no-champion")
    csv_body = ",".join(FEATURE_NAMES) + "\n" + ",".join(
        str(c.typical) for c in FEATURES) + "\n"
    response = httpx.post(f"{server}/predict/csv", content=csv_body,
                          headers={"content-type": "text/csv"})
    assert response.status_code == 503 and "sweep=rf" in response.json()["detail"]


def test_the_form_is_the_data_contract_labelled_and_prefilled(page, server, champion, tmp_path):
    page.goto(server)
    grouped = [name for _, names in GROUPS for name in names]
    assert sorted(grouped) == sorted(FEATURE_NAMES) and len(set(grouped)) == len(grouped)
    for col in FEATURES:
        control = page.locator(f"#person [name='{col.name}']")
        assert control.count() == 1
        label = page.locator(f"label[for='f-{col.name}']").inner_text()
        assert col.name in label and col.description.lower() in label.lower()
        if isinstance(col, Numeric):
            attrs = [control.get_attribute(a) for a in ("type", "min", "max", "step", "value")]
            assert attrs == ["number", f"{col.low:g}", f"{col.high:g}", f"{col.step:g}",
                             f"{col.typical:g}"], col.name
        else:
            options = control.locator("option")
            assert options.evaluate_all("os => os.map(o => o.value)") == list(col.levels)
            assert control.input_value() == col.typical
    # every control has a label a screen reader reads; results are announced
    unlabelled = page.evaluate("""[...document.querySelectorAll('input, select')]
        .filter(e => !e.labels.length).map(e => e.id)""")
    assert unlabelled == []
    assert page.get_attribute("#result", "aria-live") == "polite"
    assert page.get_attribute("#summary", "role") == "alert"
    assert "version" in page.inner_text("#model-line")
    assert page.locator("table.metrics th").all_inner_texts()  # the version's test metrics
    assert "f1_macro" in page.inner_text("table.metrics")
    page.click("details summary")  # the version's model card opens in place
    assert page.text_content("pre.card").strip() == httpx.get(f"{server}/model/card").text.strip()
    for href in ("/model", "/model/card", "/schema", "/schema/openapi.json"):
        assert page.locator(f"a[href='{href}']").count() == 1, href
        assert httpx.get(f"{server}{href}").status_code == 200, href


def test_one_person_through_the_form_gets_the_models_own_answer(page, server, champion,
                                                                 people, tmp_path):
    page.goto(server)
    row = people.iloc[[7]]
    fill(page, row.iloc[0].to_dict())
    page.click("#person button[type=submit]")
    page.wait_for_selector("#prediction")
    want = champion.predict(row[list(FEATURE_NAMES)])[0]
    assert page.get_attribute("#prediction", "data-class") == want
    assert page.inner_text("#prediction") == f"Predicted: {words(want)}"
    assert page.inner_text("#served-by") == "by obesity_full version 1 (onnx backend)"
    shown = dict(zip(page.locator(".bars .class").all_inner_texts(),
                     page.locator(".bars .share").all_inner_texts(), strict=True))
    assert list(shown) == [words(c) for c in CLASSES]  # the classes in their order of severity
    probabilities = champion.predict_proba(row[list(FEATURE_NAMES)])[0]
    for cls, p in zip(champion.classes_, probabilities, strict=True):
        assert abs(float(shown[words(cls)].removesuffix(" %")) - 100 * p) <= 0.051, cls
    assert page.locator(".bars li.top").inner_text().startswith(words(want))
    shot(page, tmp_path, "prediction")


def test_the_form_works_from_the_keyboard(page, server, champion):
    page.goto(server)
    page.focus("#f-Gender")
    order = []
    for _ in range(len(FEATURES)):
        order.append(page.evaluate("document.activeElement.name"))
        page.keyboard.press("Tab")
    assert order == [name for _, names in GROUPS for name in names]
    page.focus("#f-Age")
    page.keyboard.press("Enter")  # Enter in a field submits the form
    page.wait_for_selector("#prediction")


def test_a_bad_value_is_shown_at_its_field(page, server, champion, tmp_path):
    page.goto(server)
    page.fill("#f-Height", "175")  # centimetres where the contract says metres
    page.fill("#f-Age", "")
    page.fill("#f-Weight", "")
    page.type("#f-Weight", "83e")  # not a number: the browser keeps no value; the page says so
    page.click("#person button[type=submit]")
    page.wait_for_selector("#e-Height:not([hidden])")
    assert "2.5" in page.inner_text("#e-Height") and "175" in page.inner_text("#e-Height")
    assert page.get_attribute("#f-Height", "aria-invalid") == "true"
    assert "missing" in page.inner_text("#e-Age")
    assert page.inner_text("#e-Weight") == "not a number"
    assert page.locator(".error:not([hidden])").count() == 3  # only the fields at fault
    assert page.evaluate("document.activeElement.id") in ("f-Age", "f-Height")
    assert page.locator("#prediction").count() == 0
    shot(page, tmp_path, "bad-value")
    page.fill("#f-Height", "1.75")  # mended: the errors go, the answer comes
    page.fill("#f-Age", "30")
    page.fill("#f-Weight", "83.5")
    page.click("#person button[type=submit]")
    page.wait_for_selector("#prediction")
    assert page.locator(".error:not([hidden])").count() == 0


def test_a_csv_upload_predicts_every_row_like_the_model(page, server, champion, people,
                                                        tmp_path):
    upload = write_csv(people, tmp_path / "people.csv")  # 50 rows, with the label column
    page.goto(server)
    page.set_input_files("#csv-file", upload)
    page.click("#csv button[type=submit]")
    page.wait_for_selector("#csv-table")
    want = list(champion.predict(people[list(FEATURE_NAMES)]))
    shown = page.locator("#csv-table tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.class)")
    assert shown == want
    assert page.inner_text("#csv-summary").startswith("50 rows predicted by obesity_full version 1")
    with page.expect_download() as download:
        page.click("#csv-download")
    assert download.value.suggested_filename == "people-predictions.csv"
    with open(download.value.path(), newline="") as saved_file:
        saved = list(csv.DictReader(saved_file))
    assert list(saved[0]) == [*people.columns, *OUTPUTS]  # the file as sent, predictions added
    assert [r["prediction"] for r in saved] == want
    assert [r["NObeyesdad"] for r in saved] == list(people["NObeyesdad"])
    got = np.array([[float(r[f"probability_{c}"]) for c in champion.classes_] for r in saved])
    assert np.abs(got - champion.predict_proba(people[list(FEATURE_NAMES)])).max() <= 2e-5
    shot(page, tmp_path, "csv")


def test_a_bad_csv_row_is_named_by_its_line(page, server, champion, people, tmp_path):
    frame = people.head(5).astype(object)
    frame.loc[frame.index[2], "Height"] = 175  # data line 3 = file line 4
    bad = write_csv(frame, tmp_path / "bad.csv")
    page.goto(server)
    page.set_input_files("#csv-file", bad)
    page.click("#csv button[type=submit]")
    page.wait_for_selector("#csv-error")
    assert "line 4, Height" in page.inner_text("#csv-result")
    assert page.locator("#csv-table").count() == 0
    shot(page, tmp_path, "bad-csv")


def test_the_page_uses_nothing_but_the_service(page, server, champion):
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto(server)
    page.click("#person button[type=submit]")
    page.wait_for_selector("#prediction")
    assert len(seen) >= 4  # the page, its stylesheet and script, the prediction
    assert all(url.startswith(server) or url.startswith("data:") for url in seen), seen
    policy = httpx.get(server).headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_the_api_reference_works_offline_and_calls_the_api(page, server, champion, tmp_path):
    """/schema is Swagger UI from the service's own files (Litestar's viewers use a CDN): every
    operation listed, and "Try it out" on GET /ready answers with the served version."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto(f"{server}/schema")
    page.wait_for_selector(".opblock-summary-path")
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    documented = httpx.get(f"{server}/schema/openapi.json").json()["paths"]
    assert sorted(p.replace("\u200b", "") for p in paths) == sorted(documented)
    ready = page.locator(".opblock-get", has_text="/ready")
    ready.locator(".opblock-summary").click()
    ready.locator("button.try-out__btn").click()
    ready.locator("button.execute").click()
    answer = ready.locator(".live-responses-table tbody .response-col_status").first
    answer.wait_for()
    assert answer.inner_text().strip() == "200"
    body = ready.locator(".live-responses-table tbody .response-col_description pre").first
    assert '"version": "1"' in body.inner_text()
    shot(page, tmp_path, "api-reference")
    assert all(url.startswith(server) or url.startswith("data:") for url in seen), seen


def test_the_page_reads_on_a_phone(browser, server, champion, tmp_path):
    context = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True)
    tab = context.new_page()
    tab.goto(server)
    tab.click("#person button[type=submit]")
    tab.wait_for_selector("#prediction")
    assert tab.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
    shot(tab, tmp_path, "phone")
    context.close()


def post_csv(server: str, text: str | bytes, content_type: str = "text/csv") -> httpx.Response:
    return httpx.post(f"{server}/predict/csv", content=text, headers={"content-type": content_type})


def as_text(frame) -> str:
    return frame.to_csv(index=False)


def test_csv_keeps_the_file_and_replaces_earlier_predictions(server, champion, people, store):
    logged = prediction_log_rows(store)
    first = post_csv(server, "\ufeff" + as_text(people.head(3)).replace("\n", "\r\n"))  # BOM, CRLF
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("text/csv")
    assert (first.headers["x-model-name"], first.headers["x-model-version"]) == ("obesity_full", "1")
    again = post_csv(server, first.text)  # a download sent again: same columns, same answers
    assert again.status_code == 200 and again.text == first.text
    rows = list(csv.reader(io.StringIO(first.text)))
    assert rows[0] == [*people.columns, *OUTPUTS] and len(rows) == 4
    deadline = time.monotonic() + 10  # the log writes every second: both files' rows arrive
    while prediction_log_rows(store) < logged + 6:
        assert time.monotonic() < deadline, (logged, prediction_log_rows(store))
        time.sleep(0.2)


def prediction_log_rows(store: Path) -> int:
    """Rows in the service's prediction log (its default: predictions.db beside the stores)."""
    path = store / "predictions.db"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT count(*) FROM predictions").fetchone()[0]


def test_csv_problems_are_named_by_line_and_column(server, champion, people):
    text = as_text(people.head(4)).splitlines()
    header = text[0].split(",")
    cells = text[2].split(",")
    cells[header.index("Age")] = "abc"
    cells[header.index("MTRANS")] = "Car"
    cells[header.index("Weight")] = ""
    lines = [text[0], text[1], ",".join(cells), "", text[3], text[4] + ",extra"]
    response = post_csv(server, "\n".join(lines) + "\n")
    assert response.status_code == 400
    errors = {(e["line"], e["field"]): e["message"] for e in response.json()["errors"]}
    assert set(errors) == {(3, "Age"), (3, "Weight"), (3, "MTRANS"), (6, "row")}
    assert "not a number" in errors[3, "Age"] and "missing" in errors[3, "Weight"]
    assert "Public_Transportation" in errors[3, "MTRANS"]
    assert errors[6, "row"] == "18 cells, the header has 17"

    no_weight = people.head(2).drop(columns=["Weight"])
    missing = post_csv(server, as_text(no_weight)).json()
    assert missing["errors"] == [{"field": "Weight", "message": "column missing from the header",
                                  "line": 1}]


@pytest.mark.parametrize(("body", "status", "says"), [
    (b"", 400, "empty"),
    (",".join(FEATURE_NAMES).encode() + b"\n", 400, "no rows"),
    (b"Gender,Age\n\xff\xfe\n", 400, "not UTF-8"),
    (b'Gender,"Age\n', 400, "not CSV"),
    (";".join(FEATURE_NAMES).encode() + b"\nFemale;21\n", 400, "separated by ';'"),
])
def test_csv_that_is_not_a_table_is_a_clear_400(server, champion, body, status, says):
    response = post_csv(server, body)
    assert response.status_code == status and says in response.json()["detail"]


def test_csv_limits_and_content_type(server, champion, people):
    many = people.sample(BATCH_LIMIT + 1, replace=True, random_state=0)
    response = post_csv(server, as_text(many))
    assert response.status_code == 413 and f"at most {BATCH_LIMIT} rows" in response.json()["detail"]
    huge = post_csv(server, "x" * 2_000_001)  # over the default body_limit_bytes
    assert huge.status_code == 413 and "limit of 2,000,000 bytes" in huge.json()["detail"]
    wrong = post_csv(server, as_text(people.head(2)), "application/json")
    assert wrong.status_code == 415 and "text/csv" in wrong.json()["detail"]
