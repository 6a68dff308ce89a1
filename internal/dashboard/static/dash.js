// Spool dashboard script: live updates, theme, and actions through the
// public HTTP API. A plain ES module, served as is (no build step).

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// ---- theme ----------------------------------------------------------------
const themeKey = "spool-theme";
function applyTheme(t) {
  if (t === "dark" || t === "light") document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}
applyTheme(localStorage.getItem(themeKey));
$("#theme")?.addEventListener("click", () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === "dark"
    : matchMedia("(prefers-color-scheme: dark)").matches;
  const next = dark ? "light" : "dark";
  localStorage.setItem(themeKey, next);
  applyTheme(next);
});

// ---- messages -------------------------------------------------------------
function flash(msg, isError) {
  const f = $("#flash");
  if (!f) return;
  f.textContent = msg;
  f.classList.toggle("error", !!isError);
  f.hidden = false;
}

// ---- API ------------------------------------------------------------------
class APIError extends Error {}

async function api(method, path, body) {
  const init = { method, headers: { "Accept": "application/json" }, credentials: "same-origin" };
  // A signed-in session proves each change with its CSRF token.
  const csrf = document.querySelector('meta[name="spool-csrf"]')?.content;
  if (csrf) init.headers["X-Spool-CSRF"] = csrf;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const msg = data && data.error ? data.error.message : `${res.status} ${res.statusText}`;
    throw new APIError(msg);
  }
  return data;
}

// ---- refreshing the page's data -------------------------------------------
let refreshing = false, again = false, lastRefresh = 0;

// refresh fetches the page again and swaps its live regions (whole = true:
// all of <main>, after an action).
async function refresh(whole) {
  if (refreshing) { again = true; return; }
  refreshing = true;
  try {
    const res = await fetch(location.href, { headers: { "Accept": "text/html" }, credentials: "same-origin" });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    if (whole) {
      const fresh = $("#main", doc);
      if (fresh) $("#main").replaceChildren(...fresh.childNodes);
    } else {
      for (const el of $$("[data-live][id]")) {
        const fresh = doc.getElementById(el.id);
        if (fresh) el.replaceWith(fresh);
      }
    }
    lastRefresh = Date.now();
    document.dispatchEvent(new CustomEvent("spool:refreshed"));
  } catch { /* the next event or poll tries again */ } finally {
    refreshing = false;
    if (again) { again = false; setTimeout(() => refresh(false), 250); }
  }
}

let pending = null;
function soon() {
  if (pending) return;
  const wait = Math.max(0, 1000 - (Date.now() - lastRefresh));
  pending = setTimeout(() => { pending = null; refresh(false); }, wait);
}

function setLive(text, on) {
  const el = $("#live-state");
  if (el) { el.textContent = text; el.classList.toggle("on", on); }
}

let poller = null;
function poll() {
  if (poller) return;
  setLive("◌ polling", false);
  poller = setInterval(() => refresh(false), 5000);
}

if ($$("[data-live]").length > 0) {
  if ("EventSource" in window) {
    const es = new EventSource("/v1/events?stats=5s");
    const on = () => soon();
    es.addEventListener("job", on);
    es.addEventListener("queue", on);
    es.addEventListener("missed", on);
    es.onopen = () => { setLive("● live", true); if (poller) { clearInterval(poller); poller = null; } };
    es.onerror = () => { if (es.readyState === EventSource.CLOSED) poll(); else setLive("◌ reconnecting", false); };
  } else {
    poll();
  }
}

// ---- actions --------------------------------------------------------------
async function busy(btn, fn) {
  if (btn) btn.disabled = true;
  try { await fn(); } catch (e) {
    flash(e instanceof APIError ? e.message : "The request failed: " + e.message, true);
  } finally { if (btn) btn.disabled = false; }
}

const perJob = {
  retry: (id) => api("POST", `/v1/jobs/${id}/retry`),
  cancel: (id) => api("DELETE", `/v1/jobs/${id}`),
  delete: (id) => api("POST", `/v1/jobs/${id}/delete`),
};
const done = { retry: "retried", cancel: "cancelled", delete: "deleted" };

async function eachJob(action, ids) {
  let ok = 0; const failed = [];
  for (const id of ids) {
    try { await perJob[action](id); ok++; } catch (e) { failed.push(`${id}: ${e.message}`); }
  }
  if (failed.length) flash(`${ok} ${done[action]}; ${failed.length} refused: ${failed.slice(0, 3).join("; ")}`, true);
  else flash(`${ok} job${ok === 1 ? "" : "s"} ${done[action]}.`);
  await refresh(true);
}

function bulkFilter(box) {
  const f = {};
  for (const [k, attr] of [["state", "state"], ["type", "type"], ["tag", "tag"], ["ordering_key", "orderingKey"],
    ["payload_field", "payloadField"], ["payload_value", "payloadValue"]]) {
    if (box.dataset[attr]) f[k] = box.dataset[attr];
  }
  return f;
}

let confirmAction = null;

document.addEventListener("click", (ev) => {
  const t = ev.target.closest("button, input[type=checkbox]");
  if (!t) return;
  if (t.id === "select-all") {
    for (const c of $$("input[name=sel]")) c.checked = t.checked;
    return;
  }
  if (t.dataset.api) {
    const [method, path] = t.dataset.api.split(" ");
    busy(t, async () => {
      await api(method, path, t.dataset.body);
      flash("Done.");
      if (t.dataset.then) location.assign(t.dataset.then);
      else await refresh(true);
    });
    return;
  }
  if (t.dataset.selected) {
    const ids = $$("input[name=sel]:checked").map((c) => c.value);
    if (!ids.length) { flash("Select jobs first (the boxes on the left).", true); return; }
    busy(t, () => eachJob(t.dataset.selected, ids));
    return;
  }
  if (t.dataset.each) {
    const ids = t.dataset.ids.split(" ").filter(Boolean);
    busy(t, () => eachJob(t.dataset.each, ids));
    return;
  }
  if (t.dataset.bulk) {
    const box = t.closest(".bulk");
    const action = t.dataset.bulk;
    const path = `/v1/queues/${encodeURIComponent(box.dataset.queue)}/jobs:${action}`;
    const filter = bulkFilter(box);
    busy(t, async () => {
      const dry = await api("POST", path, { ...filter, dry_run: true });
      const desc = Object.entries(filter).map(([k, v]) => `${k} ${v}`).join(", ") || "no filter";
      $("#confirm-text").textContent = `${action} ${dry.count} job${dry.count === 1 ? "" : "s"} of ${box.dataset.queue} (${desc})?`;
      $("#confirm").hidden = false;
      confirmAction = async () => {
        const res = await api("POST", path, filter);
        flash(`${res.count} job${res.count === 1 ? "" : "s"} ${done[action]}.`);
        await refresh(true);
      };
    });
    return;
  }
  if (t.id === "confirm-yes" && confirmAction) {
    const fn = confirmAction; confirmAction = null;
    $("#confirm").hidden = true;
    busy(t, fn);
    return;
  }
  if (t.id === "confirm-no") {
    confirmAction = null;
    $("#confirm").hidden = true;
  }
});

// Sign in and out (the session lives in HttpOnly cookies the script
// never sees).
$("#signout")?.addEventListener("click", (ev) => busy(ev.target, async () => {
  await api("DELETE", "/v1/session");
  location.assign("/login");
}));

// The settings form sends only the fields changed.
document.addEventListener("submit", (ev) => {
  const form = ev.target;
  if (form.id === "login") {
    ev.preventDefault();
    const key = form.elements.key.value;
    busy($("button[type=submit]", form), async () => {
      await api("POST", "/v1/session", { key });
      location.assign(form.dataset.next || "/");
    });
    return;
  }
  if (!form.dataset.patch) return;
  ev.preventDefault();
  const body = {};
  for (const input of $$("input[name]", form)) {
    if (input.value === input.defaultValue) continue;
    let v = input.value.trim();
    switch (input.dataset.kind) {
      case "int": v = Number(v); if (!Number.isInteger(v)) { flash(`${input.name} must be a whole number`, true); return; } break;
      case "float": v = Number(v); if (!Number.isFinite(v)) { flash(`${input.name} must be a number`, true); return; } break;
    }
    const [a, b] = input.name.split(".");
    if (b) { body[a] = body[a] || {}; body[a][b] = v; } else body[a] = v;
  }
  if (!Object.keys(body).length) { flash("Nothing changed."); return; }
  busy($("button[type=submit]", form), async () => {
    await api("PATCH", form.dataset.patch, body);
    flash("Saved: " + Object.keys(body).join(", ") + ".");
    await refresh(true);
  });
});
