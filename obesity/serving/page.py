"""GET /: the service's one page for people: a form generated from the data contract, a CSV
upload, and the served version with its test metrics and model card.

No build step and nothing from the network: the HTML is rendered here (the form once, the model
part per request), its stylesheet and script are the two files in obesity/serving/static, and the
page talks only to this service's own JSON API (/predict, /predict/csv, /model). The browser's
own validation is off (`novalidate`): the API is the one judge of an input, and its errors are
shown at the field they name.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from obesity.data.contract import CLASSES, FEATURES, Column, Numeric
from obesity.serving.predictors import ServedModel

STATIC_DIR = Path(__file__).with_name("static")
# Only this origin, no inline script or style: the page cannot be made to run anything else.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
       "img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
# The form's sections: every input column once (tests/integration/test_page.py checks it
# against the contract).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Body", ("Gender", "Age", "Height", "Weight", "family_history_with_overweight")),
    ("Eating and drinking", ("FAVC", "FCVC", "NCP", "CAEC", "CH2O", "CALC", "SCC")),
    ("Daily life", ("FAF", "TUE", "SMOKE", "MTRANS")),
)


def words(code: str) -> str:
    """A class or level as people read it: `Obesity_Type_II` -> `Obesity type II`."""
    first, *rest = code.split("_")
    return " ".join([first, *(w if w.isupper() else w.lower() for w in rest)])


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _label(col: Column) -> str:
    text = col.description or col.name
    return f"{_e(text[0].upper() + text[1:])} <code>{_e(col.name)}</code>"


def _field(col: Column) -> str:
    """One labelled input, its hint and the place where the API's error about it goes."""
    fid, hint_id, err_id = f"f-{col.name}", f"h-{col.name}", f"e-{col.name}"
    if isinstance(col, Numeric):
        hint = f"{col.scale}; " if col.scale else ""
        hint += f"{col.low:g} to {col.high:g}"
        control = (f'<input id="{fid}" name="{_e(col.name)}" type="number" inputmode="decimal" '
                   f'min="{col.low:g}" max="{col.high:g}" step="{col.step:g}" '
                   f'value="{col.typical:g}" aria-describedby="{hint_id} {err_id}">')
        hint_html = f'<p class="hint" id="{hint_id}">{_e(hint)}</p>'
    else:
        options = "".join(f'<option value="{_e(level)}"{" selected" if level == col.typical else ""}>'
                          f"{_e(words(level))}</option>" for level in col.levels)
        control = f'<select id="{fid}" name="{_e(col.name)}" aria-describedby="{err_id}">{options}</select>'
        hint_html = ""
    return (f'<div class="field"><label for="{fid}">{_label(col)}</label>{control}{hint_html}'
            f'<p class="error" id="{err_id}" hidden></p></div>')


def _form() -> str:
    by_name = {c.name: c for c in FEATURES}
    sections = "".join(
        f'<fieldset><legend>{_e(title)}</legend>{"".join(_field(by_name[n]) for n in names)}</fieldset>'
        for title, names in GROUPS)
    return (f'<form id="person" novalidate aria-describedby="person-help">'
            f'<p id="person-help">One person, prefilled with a typical one (the data\'s medians '
            f'and most frequent answers). Change any answer, then predict.</p>{sections}'
            f'<button type="submit">Predict</button></form>')


def _status(model: ServedModel | None, problem: str) -> str:
    """Which version answers; or why none does, and how to get one (the page's first words)."""
    if model is None:
        text = _e(problem[:1].upper() + problem[1:])
        text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
        return f'<p class="notice" id="no-model" role="status">{text}</p>'
    return (f'<p id="model-line">Answers come from <strong>{_e(model.name)}</strong> version '
            f'<strong id="model-version">{_e(model.version)}</strong> ({_e(model.alias)}), '
            f'run by its <span id="model-backend">{_e(model.predictor.backend)}</span> backend, '
            f"loaded {_e(model.loaded_at[:19].replace('T', ' '))} UTC.</p>")


def _model(model: ServedModel | None) -> str:
    """The served version's test metrics and model card."""
    if model is None:
        return "<p>No model is served: none to describe.</p>"
    metrics = sorted((k, v) for k, v in model.tags.items() if k.startswith("test_"))
    rows = "".join(f'<tr><th scope="row">{_e(k.removeprefix("test_"))}</th>'
                   f"<td>{_e(_number(v))}</td></tr>" for k, v in metrics)
    table = (f'<table class="metrics"><caption>Version {_e(model.version)} on the held-out test '
             f"split</caption>{rows}</table>" if rows else "<p>This version has no test metrics.</p>")
    table += ("<p>The test split is a random split of a file whose rows are mostly "
              "generated from a few hundred survey answers: it flatters every model. New labelled "
              "people say more:</p>" + _truth(model.tags))
    card = (f'<details><summary>Model card of version {_e(model.version)}</summary>'
            f'<pre class="card">{_e(model.card)}</pre>'
            f'<p><a href="/model/card">The card as markdown</a></p></details>' if model.card
            else "<p>This version has no model card.</p>")
    return table + card


def _truth(tags: dict[str, str]) -> str:
    """What labelled data other than the test split said of the version (its tags)."""
    said = []
    if "evaluated" in tags:
        said.append(f'<li id="evaluated">{_e(tags["evaluated"])}</li>')
    if tags.get("realized_accuracy", "-") != "-":
        said.append(f'<li id="realized">its own answers, labelled later: '
                    f'{_e(tags.get("performance_status", "?"))}, accuracy '
                    f'{_e(tags["realized_accuracy"])} on {_e(tags.get("realized_rows", "?"))} '
                    "labelled rows</li>")
    return f"<ul>{''.join(said)}</ul>" if said else "<p>No labelled data beyond the test split yet.</p>"


def _number(tag: str) -> str:
    try:
        return f"{float(tag):.4f}"
    except ValueError:
        return tag


FORM = _form()
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Obesity level: try the model</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/page.css">
<script type="application/json" id="contract">{contract}</script>
<script src="/static/page.js" defer></script>
</head>
<body>
<header>
<h1>Obesity level: try the model</h1>
<p>What the served model says about the obesity level of a person (seven classes, from
insufficient weight to obesity type III) from 16 answers about body, eating habits and daily life.
A model's guess from survey answers, not a diagnosis.</p>
{status}
</header>
<main>
<section aria-labelledby="one-h">
<h2 id="one-h">One person</h2>
{form}
<div id="summary" role="alert"></div>
<div id="result" aria-live="polite"></div>
</section>
<section aria-labelledby="csv-h">
<h2 id="csv-h">Many people: a CSV file</h2>
<form id="csv">
<p id="csv-help">A file with a header line and the 16 input columns, spelled as in the data set
(other columns, such as the label, are kept); at most {limit} rows. The answer is the same file
with the prediction and the probability of each class added.</p>
<label for="csv-file">CSV file</label>
<input id="csv-file" name="file" type="file" accept=".csv,text/csv" aria-describedby="csv-help">
<button type="submit">Predict the file</button>
</form>
<div id="csv-result" aria-live="polite"></div>
</section>
<section aria-labelledby="model-h">
<h2 id="model-h">The model</h2>
{model}
<ul class="links">
<li><a href="/model">Version, metrics and input schema</a> (JSON)</li>
<li><a href="/schema">API reference</a> (Swagger UI: try every operation from here)</li>
<li><a href="/schema/openapi.json">OpenAPI document</a> (JSON)</li>
</ul>
</section>
</main>
</body>
</html>
"""


# What the script needs of the contract, as JSON in a data block ("</" escaped: no value can
# close the script element)
CONTRACT = json.dumps({"classes": {c: words(c) for c in CLASSES},
                       "columns": [c.name for c in FEATURES],
                       "numeric": [c.name for c in FEATURES if isinstance(c, Numeric)]}
                      ).replace("</", "<\\/")


def render(model: ServedModel | None, problem: str, batch_limit: int) -> str:
    """The page for the model served now (None: the page says why and how to get one)."""
    return PAGE.format(contract=CONTRACT, form=FORM, limit=batch_limit,
                       status=_status(model, problem), model=_model(model))
