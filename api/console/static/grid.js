// The decision table grid editor: cells are inputs (Tab, Enter and the arrow keys move between them),
// rows can be moved, copied and deleted; "保存为草稿" sends the rows to the console's draft endpoint.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  for (const section of document.querySelectorAll(".grid-editor")) {
    const body = section.querySelector("tbody");
    const rows = () => Array.from(body.querySelectorAll("tr[data-source]"));

    function renumber() {
      rows().forEach(function (tr, i) {
        for (const input of tr.querySelectorAll("input.cell-input")) {
          const column = input.dataset.column;
          input.setAttribute("aria-label", "第 " + (i + 1) + " 行 " + (column || "id"));
        }
      });
    }

    function move(input, dRow, dCol) {
      const tr = input.closest("tr");
      const list = rows();
      const cells = Array.from(tr.querySelectorAll("input.cell-input"));
      const col = cells.indexOf(input) + dCol;
      const target = list[list.indexOf(tr) + dRow];
      if (!target) return;
      const next = target.querySelectorAll("input.cell-input")[col];
      if (next) { next.focus(); next.select(); }
    }

    body.addEventListener("keydown", function (event) {
      const input = event.target;
      if (!input.classList || !input.classList.contains("cell-input")) return;
      if (event.key === "ArrowDown" || (event.key === "Enter" && !event.shiftKey)) {
        event.preventDefault(); move(input, 1, 0);
      } else if (event.key === "ArrowUp" || (event.key === "Enter" && event.shiftKey)) {
        event.preventDefault(); move(input, -1, 0);
      }
    });

    body.addEventListener("click", function (event) {
      const button = event.target.closest("button[data-op]");
      if (!button) return;
      const tr = button.closest("tr");
      const op = button.dataset.op;
      if (op === "up" && tr.previousElementSibling) {
        body.insertBefore(tr, tr.previousElementSibling);
      } else if (op === "down" && tr.nextElementSibling && tr.nextElementSibling.dataset.source) {
        body.insertBefore(tr.nextElementSibling, tr);
      } else if (op === "copy") {
        const copy = tr.cloneNode(true);
        const id = copy.querySelector("input.row-id");
        id.value = id.value + "-副本";
        tr.after(copy);
        id.focus();
      } else if (op === "delete") {
        if (rows().length <= 1) { window.rulesvc.flash("决策表至少要有一行（默认行之外）", "error"); return; }
        tr.remove();
      }
      renumber();
      button.focus();
    });

    section.querySelector(".save-draft").addEventListener("click", async function () {
      const payload = {
        base_version: Number(section.dataset.baseVersion),
        reason: section.querySelector("input.reason").value,
        rows: rows().map(function (tr) {
          const cells = {};
          for (const input of tr.querySelectorAll("input.cell-input[data-column]")) {
            cells[input.dataset.column] = input.value.trim();
          }
          return { id: tr.querySelector("input.row-id").value.trim(), source: tr.dataset.source, cells };
        }),
      };
      const url = window.rulesvc.base + "/api/rulesets/" + encodeURIComponent(section.dataset.ruleset) +
        "/tables/" + encodeURIComponent(section.dataset.table) + "/draft";
      const result = await window.rulesvc.api("POST", url, payload);
      if (result.ok) {
        window.location.assign(result.data.url);
      } else {
        const details = result.data && Array.isArray(result.data.details)
          ? "：" + result.data.details.map(function (d) { return d.message || ""; }).join("；") : "";
        window.rulesvc.flash(window.rulesvc.refusal(result) + details, "error");
      }
    });
  }
});
