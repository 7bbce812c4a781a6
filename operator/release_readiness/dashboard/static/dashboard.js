// Live updates: every few seconds, fetch the page's fragment (server-rendered, escaped HTML) and swap it in only
// when its digest (ETag) changed; while unchanged the server answers 304 without a body. No reload: an unchanged page is left alone; on a change, focus (by id, or the link with
// the same address and text), scroll position and open <details> are kept.
(function () {
  "use strict";
  const region = document.getElementById("live");
  const status = document.getElementById("live-status");
  if (!region || !region.dataset.fragment) return;
  const every = Math.max(1, Number(region.dataset.refresh || "5")) * 1000;

  function refocus(was) {
    if (!was) return;
    let el = was.id ? document.getElementById(was.id) : null;
    if (!el && was.href) {
      el = Array.from(region.querySelectorAll("a[href]")).find(
        (a) => a.getAttribute("href") === was.href && a.textContent === was.text) || null;
    }
    if (el) el.focus({ preventScroll: true });
  }

  function swap(html) {
    const active = document.activeElement;
    const was = active && region.contains(active)
      ? { id: active.id, href: active.getAttribute("href"), text: active.textContent } : null;
    const open = Array.from(region.querySelectorAll("details[open][id]"), (d) => d.id);
    region.innerHTML = html;
    open.forEach((id) => { const d = document.getElementById(id); if (d) d.open = true; });
    refocus(was);
  }

  async function tick() {
    try {
      const resp = await fetch(region.dataset.fragment, {
        credentials: "same-origin", cache: "no-store", headers: { "If-None-Match": `"${region.dataset.digest}"` },
      });
      const digest = (resp.headers.get("ETag") || "").replaceAll('"', "");
      if (resp.status !== 304 && digest !== region.dataset.digest) {
        swap(await resp.text());
        region.dataset.digest = digest;
        region.dataset.updates = String(Number(region.dataset.updates || "0") + 1);
      }
      const when = new Date().toISOString().slice(11, 19);
      const fine = resp.ok || resp.status === 304;
      status.textContent = fine ? `Live: checked at ${when} UTC.` : `Live: the server answered ${resp.status} at ${when} UTC.`;
    } catch (err) {
      status.textContent = `Live updates paused: ${err.message}; retrying.`;
    } finally {
      setTimeout(tick, every);
    }
  }
  setTimeout(tick, every);
})();
