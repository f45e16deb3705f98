"use strict";

document.addEventListener("DOMContentLoaded", function () {
  const form = document.getElementById("signin-form");
  if (!form) return;
  const error = document.getElementById("signin-error");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    error.hidden = true;
    const body = {
      username: form.username.value.trim(),
      password: form.password.value,
    };
    if (form.totp.value.trim()) body.totp = form.totp.value.trim();
    const result = await window.rulesvc.api("POST", "/v1/auth/login", body);
    if (result.ok) {
      window.location.assign(form.dataset.next);
      return;
    }
    if (result.data && result.data.code === "auth.totp_required") {
      document.getElementById("totp-row").hidden = false;
      form.totp.focus();
    }
    error.textContent = window.rulesvc.refusal(result);
    error.hidden = false;
  });
});
