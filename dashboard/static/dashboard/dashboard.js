/* Lineup Ops dashboard: report the browser's time zone (a cookie the server reads) and refresh every N seconds.
   A reload keeps the URL, so the dashboard's filters (?provider=, ?tenant=) survive it. */
(function () {
  "use strict";
  var panel = document.querySelector("[data-dash-tz]");
  var tz = "";
  try { tz = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { tz = ""; }
  if (!/^[A-Za-z0-9_+\-\/]{1,64}$/.test(tz)) { tz = ""; }  // IANA names only; written to the cookie as they are
  var match = document.cookie.match(/(?:^|; )lo_tz=([^;]*)/);
  var current = match ? decodeURIComponent(match[1]) : "";
  if (tz && current !== tz) {
    document.cookie = "lo_tz=" + tz + "; path=/; max-age=31536000; SameSite=Lax";
  }
  // Rendered in another zone than the browser's: reload once in the right one (never loop).
  if (tz && panel && panel.getAttribute("data-dash-tz") !== tz) {
    var key = "lo_tz_reloaded:" + tz;
    try {
      if (!window.sessionStorage.getItem(key)) {
        window.sessionStorage.setItem(key, "1");
        window.location.reload();
        return;
      }
    } catch (e) { /* storage disabled: keep the server's zone */ }
  }
  if (!panel) { return; }
  var seconds = parseInt(panel.getAttribute("data-refresh"), 10) || 30;
  var button = document.getElementById("dash-refresh-toggle");
  var status = document.getElementById("dash-refresh-status");
  var paused = false;
  try { paused = window.localStorage.getItem("lo_dash_paused") === "1"; } catch (e) { paused = false; }
  var timer = null;
  function schedule() {
    window.clearTimeout(timer);
    if (!paused) { timer = window.setTimeout(function () { window.location.reload(); }, seconds * 1000); }
  }
  function show() {
    if (!button) { return; }
    button.hidden = false;
    button.textContent = paused ? "Resume auto-refresh" : "Pause auto-refresh";
    button.setAttribute("aria-pressed", paused ? "true" : "false");
    if (status) { status.classList.toggle("dash-paused", paused); }
  }
  if (button) {
    button.addEventListener("click", function () {
      paused = !paused;
      try { window.localStorage.setItem("lo_dash_paused", paused ? "1" : "0"); } catch (e) { /* ignore */ }
      show();
      schedule();
    });
  }
  show();
  schedule();
})();
