// The 测试用例 page: run one case or all of them (POST /console/api/rulesets/{name}/cases/run) and show
// pass/fail with expected vs actual; the case form: events added and removed, the case tried alone before
// it is saved, and saved into a draft (POST /console/api/rulesets/{name}/cases).
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  const api = window.rulesvc.api;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // One case's result: the badge, what went wrong (expected vs actual), and the actions it produced.
  function resultNodes(result) {
    const box = document.createDocumentFragment();
    box.appendChild(element("span", "badge " + (result.passed ? "pass" : "fail"), result.passed ? "通过" : "未通过"));
    if (result.problems.length) {
      const problems = element("ul", "problems");
      for (const p of result.problems) problems.appendChild(element("li", "mono expected", p));
      box.appendChild(problems);
    }
    const actual = element("ul", "actual");
    for (const a of result.actual) actual.appendChild(element("li", "mono", a));
    if (!result.actual.length) actual.appendChild(element("li", "", "（没有动作）"));
    if (result.passed) {
      // a passing case's actions on request; a failing one's at once, beside what was expected
      const more = element("details", "");
      more.appendChild(element("summary", "muted", "实际动作 " + result.actual.length + " 个"));
      more.appendChild(actual);
      box.appendChild(more);
    } else {
      box.appendChild(element("div", "muted", "实际动作："));
      box.appendChild(actual);
    }
    return box;
  }

  function errorNodes(errors) {
    const box = document.createDocumentFragment();
    for (const e of errors) box.appendChild(element("li", "mono", e.text || e.message));
    return box;
  }

  // -- the list ------------------------------------------------------------------------------------------
  const list = document.getElementById("case-list");
  if (list) {
    const summary = document.getElementById("run-summary");
    const errors = document.getElementById("case-errors");

    async function run(index, button) {
      const payload = {};
      if (list.dataset.draftId) payload.draft_id = list.dataset.draftId;
      if (index !== undefined) payload.index = index;
      button.disabled = true;
      summary.textContent = "运行中…";
      const answer = await api("POST", list.dataset.runUrl, payload);
      button.disabled = false;
      if (!answer.ok) {
        summary.textContent = "";
        window.rulesvc.flash(window.rulesvc.refusal(answer), "error");
        return;
      }
      const data = answer.data;
      errors.replaceChildren(errorNodes(data.errors));
      for (const result of data.results) {
        const row = list.querySelector('tr[data-index="' + result.index + '"]');
        if (!row) continue;
        row.classList.toggle("pass", result.passed);
        row.classList.toggle("fail", !result.passed);
        row.querySelector(".case-result").replaceChildren(resultNodes(result));
      }
      summary.textContent = data.errors.length
        ? "样例文件有错误，未能运行。"
        : "运行 " + data.total + " 个：通过 " + data.passed + " 个，未通过 " + data.failed + " 个。";
      summary.className = data.failed || data.errors.length ? "error" : "ok";
    }

    // an XLSX/CSV cases sheet into the draft (or a new one); a sheet with errors lists each at its cell
    const upload = document.getElementById("sheet-upload");
    if (upload) {
      upload.addEventListener("click", async function () {
        const file = document.getElementById("sheet-file").files[0];
        if (!file) {
          window.rulesvc.flash("请先选择 XLSX 或 CSV 文件。", "error");
          return;
        }
        const type = file.name.toLowerCase().endsWith(".csv")
          ? "text/csv" : "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        let url = list.dataset.sheetUrl + "?filename=" + encodeURIComponent(file.name);
        if (list.dataset.draftId) url += "&draft_id=" + encodeURIComponent(list.dataset.draftId);
        upload.disabled = true;
        const answer = await api("POST", url, file, type);
        upload.disabled = false;
        if (answer.ok) {
          window.location.assign(answer.data.url);
          return;
        }
        const details = (answer.data || {}).details;
        errors.replaceChildren(errorNodes(Array.isArray(details) ? details : []));
        window.rulesvc.flash(window.rulesvc.refusal(answer), "error");
      });
    }

    document.getElementById("run-all").addEventListener("click", function (event) {
      run(undefined, event.currentTarget);
    });
    for (const button of list.querySelectorAll("button.run-one")) {
      button.addEventListener("click", function () {
        run(Number(button.closest("tr").dataset.index), button);
      });
    }
  }

  // -- the form ------------------------------------------------------------------------------------------
  const form = document.getElementById("new-case-form");
  if (!form) return;
  const events = document.getElementById("events");
  const template = document.getElementById("event-template");
  const lines = (text) => text.split("\n").map((l) => l.trim()).filter((l) => l);

  function renumber() {
    const all = events.querySelectorAll("fieldset.given-event");
    all.forEach(function (fieldset, i) {
      fieldset.querySelector(".event-number").textContent = String(i + 1);
      fieldset.querySelector(".remove-event").disabled = all.length === 1;
    });
  }

  function wire(fieldset) {
    fieldset.querySelector(".remove-event").addEventListener("click", function () {
      fieldset.remove();
      renumber();
    });
  }

  for (const fieldset of events.querySelectorAll("fieldset.given-event")) wire(fieldset);
  renumber();

  document.getElementById("add-event").addEventListener("click", function () {
    const copy = template.content.firstElementChild.cloneNode(true);
    const previous = events.querySelector("fieldset.given-event:last-of-type");
    if (previous) {
      // the same ticket as the event before it: an update usually changes one or two fields
      const fields = previous.querySelectorAll("[data-field]");
      copy.querySelectorAll("[data-field]").forEach(function (field, i) { field.value = fields[i].value; });
    }
    events.appendChild(copy);
    wire(copy);
    renumber();
    copy.querySelector(".event-type").focus();
  });

  function caseOf() {
    const given = [];
    for (const fieldset of events.querySelectorAll("fieldset.given-event")) {
      const ticket = {};
      for (const field of fieldset.querySelectorAll("[data-field]")) ticket[field.dataset.field] = field.value;
      given.push({
        type: fieldset.querySelector(".event-type").value,
        at: fieldset.querySelector(".event-at").value,
        ticket,
      });
    }
    return {
      name: document.getElementById("case-name").value,
      given,
      until: document.getElementById("case-until").value,
      expect: lines(document.getElementById("case-expect").value),
      expect_not: lines(document.getElementById("case-expect-not").value),
      expect_none: document.getElementById("case-expect-none").checked,
    };
  }

  function target() {
    const payload = { case: caseOf() };
    if (form.dataset.draftId) payload.draft_id = form.dataset.draftId;
    if (form.dataset.index !== undefined) payload.index = Number(form.dataset.index);
    return payload;
  }

  const box = document.getElementById("form-result");

  document.getElementById("run-form-case").addEventListener("click", async function (event) {
    const button = event.currentTarget;
    button.disabled = true;
    const answer = await api("POST", form.dataset.runUrl, target());
    button.disabled = false;
    if (!answer.ok) {
      box.replaceChildren(element("p", "error", window.rulesvc.refusal(answer)));
      return;
    }
    const data = answer.data;
    if (data.errors.length) {
      const problems = element("ul", "problems error");
      problems.appendChild(errorNodes(data.errors));
      box.replaceChildren(element("p", "error", "样例有错误，未能运行："), problems);
      return;
    }
    box.replaceChildren(resultNodes(data.results[0]));
  });

  document.getElementById("save-form-case").addEventListener("click", async function (event) {
    const button = event.currentTarget;
    button.disabled = true;
    const answer = await api("POST", form.dataset.saveUrl, target());
    button.disabled = false;
    if (answer.ok) {
      // back where the form was opened (the draft's page, the 测试用例 page); a new draft: its cases
      window.location.assign(form.dataset.draftId ? form.dataset.then : answer.data.url);
      return;
    }
    const details = (answer.data || {}).details;
    const problems = element("ul", "problems error");
    problems.appendChild(errorNodes(Array.isArray(details) ? details : []));
    box.replaceChildren(element("p", "error", window.rulesvc.refusal(answer)), problems);
  });
});
