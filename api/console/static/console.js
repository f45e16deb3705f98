// rulesvc console: what every page shares. No framework; every asset is served by the service itself.
"use strict";

(function () {
  const body = document.body;

  function cookie(name) {
    const prefix = name + "=";
    for (const part of document.cookie.split(";")) {
      const item = part.trim();
      if (item.startsWith(prefix)) return decodeURIComponent(item.slice(prefix.length));
    }
    return "";
  }

  // Calls the service's JSON API with the session cookie; changing requests carry the CSRF token.
  // Resolves to {ok, status, data}; a refusal's data is {code, message, details}.
  async function api(method, url, payload, contentType) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD") {
      headers["X-CSRF-Token"] = cookie(body.dataset.csrfCookie || "rulesvc_csrf");
    }
    let data;
    if (payload !== undefined) {
      if (contentType && contentType !== "application/json") {
        headers["Content-Type"] = contentType;
        data = payload;
      } else {
        headers["Content-Type"] = "application/json";
        data = JSON.stringify(payload);
      }
    }
    const response = await fetch(url, { method, headers, body: data, credentials: "same-origin" });
    let answer = null;
    const text = await response.text();
    if (text) {
      try { answer = JSON.parse(text); } catch (e) { answer = { message: text }; }
    }
    return { ok: response.ok, status: response.status, data: answer };
  }

  function flash(message, kind) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = "flash " + (kind || "info");
    box.hidden = false;
  }

  // A refusal as a person reads it: the Chinese message, and the code for support.
  function refusal(result) {
    const data = result.data || {};
    const message = data.message || ("请求失败（HTTP " + result.status + "）");
    return data.code ? message + "（" + data.code + "）" : message;
  }

  // A time typed in Beijing time (2026-12-05 09:00, seconds optional, or with the T of ISO 8601) as ISO 8601
  // with +08:00, whatever the browser's own time zone (China has kept +08:00 all year since 1991). Anything
  // else is sent as typed, and the service refuses it with its Chinese message.
  function beijing(text) {
    const m = /^\s*(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?\s*$/.exec(text);
    return m ? m[1] + "T" + m[2] + (m[3] || ":00") + "+08:00" : text.trim();
  }

  window.rulesvc = { api, cookie, flash, refusal, beijing, base: body.dataset.base || "/console" };

  document.addEventListener("DOMContentLoaded", function () {
    const out = document.getElementById("sign-out");
    if (out) {
      out.addEventListener("click", async function () {
        const result = await api("POST", "/v1/auth/logout");
        // signed in through the provider: sign out there too (it sends the browser back, when configured)
        const provider = result.ok && result.data && result.data.provider_logout_url;
        window.location.assign(provider || window.rulesvc.base + "/");
      });
    }
    for (const form of document.querySelectorAll("form[data-no-submit]")) {
      form.addEventListener("submit", function (event) { event.preventDefault(); });
    }
    // Buttons that call the API: data-api-method, data-api-url, optional data-confirm, data-body (the JSON
    // body itself), data-body-form (the id of a form whose fields become the JSON body) and data-then
    // (where to go after success).
    for (const button of document.querySelectorAll("[data-api-url]")) {
      button.addEventListener("click", async function (event) {
        event.preventDefault();
        if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
        let payload;
        if (button.dataset.body) payload = JSON.parse(button.dataset.body);
        if (button.dataset.bodyForm) {
          payload = {};
          const form = document.getElementById(button.dataset.bodyForm);
          for (const field of form.querySelectorAll("[name]")) {
            if (field.type === "checkbox") payload[field.name] = field.checked;
            else if (field.value !== "") payload[field.name] = field.dataset.convert === "beijing"
              ? beijing(field.value) : field.value;
          }
        }
        button.disabled = true;
        const result = await api(button.dataset.apiMethod || "POST", button.dataset.apiUrl, payload);
        button.disabled = false;
        if (result.ok) {
          if (button.dataset.then) window.location.assign(button.dataset.then);
          else window.location.reload();
        } else {
          flash(refusal(result), "error");
        }
      });
    }
  });
})();
