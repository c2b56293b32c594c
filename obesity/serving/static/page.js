// The page's behaviour (GET /): send the form to /predict and a file to /predict/csv, show the
// answers, and show each error of the API at the field it names. No framework, no build step.
"use strict";

const contract = JSON.parse(document.getElementById("contract").textContent);
const numeric = new Set(contract.numeric);
const person = document.getElementById("person");
const summary = document.getElementById("summary");
const result = document.getElementById("result");
const csvForm = document.getElementById("csv");
const csvResult = document.getElementById("csv-result");

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

async function send(path, body, type) {
  // {status, answer, headers}: the body parsed (JSON) or as text (a CSV); status 0 when the
  // service did not answer at all
  let response;
  try {
    response = await fetch(path, {method: "POST", headers: {"content-type": type}, body});
  } catch (error) {
    return {status: 0, answer: {detail: `the service did not answer (${error.message})`}};
  }
  const text = await response.text();
  let answer = text;
  if ((response.headers.get("content-type") || "").startsWith("application/json")) {
    try { answer = JSON.parse(text); } catch { answer = {detail: text}; }
  }
  return {status: response.status, answer, headers: response.headers};
}

function busy(form, on) {
  form.setAttribute("aria-busy", on ? "true" : "false");
  for (const button of form.querySelectorAll("button")) button.disabled = on;
}

// ---- one person --------------------------------------------------------------------------

function clearErrors() {
  summary.replaceChildren();
  for (const node of person.querySelectorAll(".error")) { node.hidden = true; node.textContent = ""; }
  for (const node of person.querySelectorAll("[aria-invalid]")) node.removeAttribute("aria-invalid");
}

function fieldError(name, message) {
  // true when the page has that field: the message goes next to it
  const slot = document.getElementById(`e-${name}`);
  if (!slot) return false;
  slot.textContent = message;
  slot.hidden = false;
  person.elements[name].setAttribute("aria-invalid", "true");
  return true;
}

function showErrors(status, answer, local) {
  // a field the browser could not read as a number was not sent: the API's "missing" is not news
  const unread = new Set(local.map(({field}) => field));
  const errors = [...local, ...((answer && answer.errors) || []).filter(({field}) => !unread.has(field))];
  const items = errors.map(({field, message}) => {
    fieldError(field, message);
    return el("li", {}, el("code", {}, field), `: ${message}`);
  });
  const detail = (answer && answer.detail) || `status ${status}`;
  const heading = status === 503 ? "No answer: " + detail
    : items.length ? `Not predicted: ${items.length === 1 ? "one answer needs" : items.length + " answers need"} a change.`
    : `Not predicted: ${detail}`;
  summary.replaceChildren(el("p", {}, heading), ...(items.length ? [el("ul", {}, ...items)] : []));
  result.replaceChildren();
  const first = person.querySelector("[aria-invalid]");
  if (first) first.focus();
}

function bars(probabilities, predicted) {
  const list = el("ol", {class: "bars", "aria-label": "Probability of each class"});
  for (const [code, name] of Object.entries(contract.classes)) {
    const p = probabilities[code] ?? 0;
    const meter = el("meter", {min: "0", max: "1", value: String(p), "aria-hidden": "true"});
    const item = el("li", {}, el("span", {class: "class"}, name), meter,
                    el("span", {class: "share"}, `${(100 * p).toFixed(1)} %`));
    if (code === predicted) item.classList.add("top");
    list.append(item);
  }
  return list;
}

async function servedBy(model) {
  // the backend of the version that answered: the page's, or /model's after a swap
  const version = document.getElementById("model-version");
  if (!version || version.textContent !== model.version) {
    const response = await fetch("/model").catch(() => null);
    if (response && response.ok) {
      const info = await response.json();
      if (info.version === model.version) return info.backend;
    }
    return "unknown";
  }
  return document.getElementById("model-backend").textContent;
}

async function showPrediction(answer) {
  const backend = await servedBy(answer.model);
  result.replaceChildren(
    el("h3", {id: "prediction", "data-class": answer.prediction},
       `Predicted: ${contract.classes[answer.prediction]}`),
    el("p", {id: "served-by"},
       `by ${answer.model.name} version ${answer.model.version} (${backend} backend)`),
    bars(answer.probabilities, answer.prediction));
}

person.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors();
  const body = {};
  const local = [];
  for (const name of contract.columns) {
    const input = person.elements[name];
    if (input.validity && input.validity.badInput) {  // e.g. "83e": the browser keeps no value
      local.push({field: name, message: "not a number"});
      continue;
    }
    const value = input.value.trim();
    if (value !== "") body[name] = numeric.has(name) ? Number(value) : value;
  }
  busy(person, true);
  const {status, answer} = await send("/predict", JSON.stringify(body), "application/json");
  busy(person, false);
  if (status === 200 && !local.length) await showPrediction(answer);
  else showErrors(status, status === 200 ? null : answer, local);
});

// ---- a CSV file --------------------------------------------------------------------------

function parseCsv(text) {
  // RFC 4180, enough for the service's own answer (quoted cells, doubled quotes, newlines)
  const rows = [];
  let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c !== '"') cell += c;
      else if (text[i + 1] === '"') { cell += '"'; i++; }
      else quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === ",") { row.push(cell); cell = ""; }
    else if (c === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; }
    else if (c !== "\r") cell += c;
  }
  if (cell !== "" || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

function predictionTable(rows) {
  const [header, ...body] = rows;
  const at = (name) => header.indexOf(name);
  const shown = ["Gender", "Age", "Height", "Weight"].filter((name) => at(name) >= 0);
  const head = el("tr", {}, el("th", {scope: "col"}, "Row"),
                  ...shown.map((name) => el("th", {scope: "col"}, name)),
                  el("th", {scope: "col"}, "Prediction"), el("th", {scope: "col"}, "Probability"));
  const lines = body.map((row, i) => {
    const predicted = row[at("prediction")];
    const p = Number(row[at(`probability_${predicted}`)]);
    return el("tr", {"data-class": predicted}, el("td", {}, String(i + 1)),
              ...shown.map((name) => el("td", {}, row[at(name)])),
              el("td", {}, contract.classes[predicted] || predicted),
              el("td", {}, `${(100 * p).toFixed(1)} %`));
  });
  return el("div", {class: "scroll"},
            el("table", {id: "csv-table"}, el("thead", {}, head), el("tbody", {}, ...lines)));
}

csvForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = document.getElementById("csv-file").files[0];
  if (!file) {
    csvResult.replaceChildren(el("p", {class: "error"}, "Choose a CSV file first."));
    return;
  }
  busy(csvForm, true);
  const {status, answer, headers} = await send("/predict/csv", file, "text/csv");
  busy(csvForm, false);
  if (status !== 200) {
    const items = ((answer && answer.errors) || []).map(({field, message, line}) =>
      el("li", {}, line ? `line ${line}, ` : "", el("code", {}, field), `: ${message}`));
    csvResult.replaceChildren(
      el("p", {id: "csv-error"}, `Not predicted: ${(answer && answer.detail) || "status " + status}`),
      ...(items.length ? [el("ul", {}, ...items)] : []));
    return;
  }
  const rows = parseCsv(answer);
  const name = file.name.replace(/\.csv$/i, "") + "-predictions.csv";
  const link = el("a", {href: URL.createObjectURL(new Blob([answer], {type: "text/csv"})),
                        download: name, id: "csv-download"}, `Download ${name}`);
  csvResult.replaceChildren(
    el("p", {id: "csv-summary"}, `${rows.length - 1} rows predicted by ${headers.get("x-model-name")} `
       + `version ${headers.get("x-model-version")}. `, link),
    predictionTable(rows));
});
