// The ruleset text editor: a plain textarea (typing, undo, copy and paste, keyboard and screen readers work
// as everywhere) over a mirror of its text that marks each `check` diagnostic at its line and column, with
// a line-number gutter. The text is checked on the server 400 ms after the last keystroke
// (POST /console/api/rulesets/{name}/check, the same check as `rulesvc check`); "保存为草稿" sends it to
// POST /v1/rulesets/{name}/drafts.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  const panel = document.getElementById("code-panel");
  if (!panel) return;
  const text = document.getElementById("ruleset-text");
  const gutter = document.getElementById("code-gutter");
  const mirror = document.getElementById("code-mirror");
  const status = document.getElementById("check-status");
  const list = document.getElementById("diagnostics");
  const DELAY = 400;
  let diagnostics = [];
  let timer = null;
  let sequence = 0;

  function lines() { return text.value.split("\n"); }

  // The gutter's numbers and the mirror's marks, from the text and the last diagnostics.
  function draw() {
    const all = lines();
    const byLine = new Map();
    for (const d of diagnostics) {
      if (!byLine.has(d.line)) byLine.set(d.line, []);
      byLine.get(d.line).push(d);
    }
    const numbers = document.createDocumentFragment();
    const marked = document.createDocumentFragment();
    all.forEach(function (line, i) {
      const number = i + 1;
      const found = byLine.get(number);
      const cell = document.createElement("div");
      cell.textContent = String(number);
      if (found) {
        cell.className = "bad";
        cell.title = found.map(function (d) { return d.message; }).join("\n");
        cell.dataset.line = String(number);
      }
      numbers.appendChild(cell);
      if (!found) {
        marked.appendChild(document.createTextNode(line + "\n"));
        return;
      }
      const span = document.createElement("span");
      span.className = "line-bad";
      span.dataset.line = String(number);
      const col = Math.min(Math.max(found[0].col, 1), line.length + 1) - 1;
      let end = col;
      while (end < line.length && !/[\s,:\]}]/.test(line[end])) end += 1;
      if (end === col) end = Math.min(col + 1, line.length);
      span.appendChild(document.createTextNode(line.slice(0, col)));
      const mark = document.createElement("mark");
      mark.textContent = line.slice(col, end) || " ";
      span.appendChild(mark);
      span.appendChild(document.createTextNode(line.slice(end)));
      marked.appendChild(span);
      marked.appendChild(document.createTextNode("\n"));
    });
    // room for the textarea's scroll bars, so the three scroll alike to the last line
    const spare = document.createElement("div");
    spare.textContent = " ";
    numbers.appendChild(spare);
    marked.appendChild(document.createTextNode(" \n "));
    gutter.replaceChildren(numbers);
    mirror.replaceChildren(marked);
    sync();
  }

  function sync() {
    gutter.scrollTop = text.scrollTop;
    mirror.scrollTop = text.scrollTop;
    mirror.scrollLeft = text.scrollLeft;
  }

  function jump(line, col) {
    const all = lines();
    let offset = 0;
    for (let i = 0; i < line - 1 && i < all.length; i += 1) offset += all[i].length + 1;
    offset += Math.max(col - 1, 0);
    text.focus();
    text.setSelectionRange(offset, offset);
    const lineHeight = parseFloat(getComputedStyle(text).lineHeight) || 20;
    text.scrollTop = Math.max(0, (line - 3) * lineHeight);
    sync();
  }

  function show(answer) {
    diagnostics = answer.diagnostics || [];
    const items = document.createDocumentFragment();
    for (const d of diagnostics) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "diagnostic";
      button.dataset.line = String(d.line);
      button.dataset.col = String(d.col);
      button.textContent = "第 " + d.line + " 行第 " + d.col + " 列：" + d.message +
        (d.hint ? "（提示：" + d.hint + "）" : "") + "  [" + d.code + "]";
      button.addEventListener("click", function () { jump(d.line, d.col); });
      item.appendChild(button);
      items.appendChild(item);
    }
    list.replaceChildren(items);
    if (answer.ok) {
      status.textContent = "检查通过，没有发现问题。";
      status.className = "check-status good";
    } else {
      status.textContent = "发现 " + diagnostics.length + " 个问题（点击问题跳到所在位置）。";
      status.className = "check-status bad";
    }
    draw();
  }

  async function check() {
    const mine = ++sequence;
    status.textContent = "检查中…";
    status.className = "check-status muted";
    const result = await window.rulesvc.api("POST", panel.dataset.checkUrl, { content: text.value });
    if (mine !== sequence) return; // a later keystroke's check answers instead
    if (result.ok) show(result.data);
    else {
      status.textContent = window.rulesvc.refusal(result);
      status.className = "check-status bad";
    }
  }

  text.addEventListener("input", function () {
    draw();
    clearTimeout(timer);
    timer = setTimeout(check, DELAY);
  });
  text.addEventListener("scroll", sync);

  document.getElementById("save-text-draft").addEventListener("click", async function (event) {
    const button = event.currentTarget;
    button.disabled = true;
    const payload = {
      content: text.value,
      reason: document.getElementById("text-reason").value || "控制台修改规则集文本",
      base_version: Number(panel.dataset.baseVersion),
    };
    const result = await window.rulesvc.api("POST", panel.dataset.saveUrl, payload);
    button.disabled = false;
    if (result.ok) {
      window.location.assign(panel.dataset.draftBase + result.data.draft_id);
      return;
    }
    const errors = (result.data || {}).details; // a refused draft: every positioned error
    if (Array.isArray(errors) && errors.length) {
      show({ ok: false, diagnostics: errors.map(function (e) { return { line: e.line || 1, col: e.col || 1, code: e.code, message: e.message, hint: e.hint }; }) });
    }
    window.rulesvc.flash(window.rulesvc.refusal(result), "error");
  });

  draw();
  check();
});
