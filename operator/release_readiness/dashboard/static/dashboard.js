// Live updates: every few seconds, fetch the page's fragment (server-rendered, escaped HTML) and swap it in when
// it changed. No reload: focus, scroll position and open <details> are kept.
(function () {
  "use strict";
  const region = document.getElementById("live");
  const status = document.getElementById("live-status");
  if (!region || !region.dataset.fragment) return;
  const every = Math.max(1, Number(region.dataset.refresh || "5")) * 1000;
  let last = null;

  function swap(html) {
    const focused = document.activeElement && document.activeElement.id;
    const open = Array.from(region.querySelectorAll("details[open][id]"), (d) => d.id);
    region.innerHTML = html;
    open.forEach((id) => { const d = document.getElementById(id); if (d) d.open = true; });
    if (focused) { const el = document.getElementById(focused); if (el) el.focus({ preventScroll: true }); }
  }

  async function tick() {
    try {
      const resp = await fetch(region.dataset.fragment, { credentials: "same-origin", cache: "no-store" });
      const html = await resp.text();
      if (html !== last) { swap(html); last = html; }
      const when = new Date().toISOString().slice(11, 19);
      status.textContent = resp.ok ? `Live: checked at ${when} UTC.` : `Live: the server answered ${resp.status} at ${when} UTC.`;
      region.dataset.updates = String(Number(region.dataset.updates || "0") + 1);
    } catch (err) {
      status.textContent = `Live updates paused: ${err.message}; retrying.`;
    } finally {
      setTimeout(tick, every);
    }
  }
  setTimeout(tick, every);
})();
