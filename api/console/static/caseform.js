// The case form: the ticket's fields and the expectations, sent as JSON; the server writes the case file.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("case-form");
  if (!form) return;
  const lines = (text) => text.split("\n").map((l) => l.trim()).filter((l) => l);
  document.getElementById("save-case").addEventListener("click", async function () {
    const tickets = {};
    for (const fieldset of form.querySelectorAll("fieldset[data-event]")) {
      const values = {};
      for (const field of fieldset.querySelectorAll("[data-field]")) values[field.dataset.field] = field.value;
      tickets[fieldset.dataset.event] = values;
    }
    const payload = {
      name: form.querySelector("#case-name").value,
      tickets,
      expect: lines(form.querySelector("#case-expect").value),
      expect_not: lines(form.querySelector("#case-expect-not").value),
    };
    const result = await window.rulesvc.api("POST", form.dataset.url, payload);
    if (result.ok) window.location.assign(result.data.url);
    else window.rulesvc.flash(window.rulesvc.refusal(result), "error");
  });
});
