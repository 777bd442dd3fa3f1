// The case page, enhanced: keyboard shortcuts, the lease countdown, lease renewal while the
// reviewer is working. Everything here also works without it, through the page's forms.
(function () {
  "use strict";
  var page = document.getElementById("case");
  if (!page) return;

  function csrf() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function typing(target) {
    var tag = target && target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  function focus(id) {
    var el = document.getElementById(id);
    if (el) { el.focus(); el.classList.add("armed"); }
    return el;
  }

  // --- keys ------------------------------------------------------------------------------
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey && event.key === "Enter" && event.target.form) {
      event.preventDefault();
      event.target.form.requestSubmit();
      return;
    }
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (typing(event.target) || event.ctrlKey || event.metaKey || event.altKey) return;
    switch (event.key) {
      case "a": event.preventDefault(); focus("agree"); break;          // Enter confirms
      case "o":
        event.preventDefault();
        focus("override-outcome") || focus("blind-outcome") || focus("reason-code");
        break;
      case "e":
        var box = document.getElementById("escalate-box");
        if (!box) break;  // seniors settle cases: nobody above them to escalate to
        event.preventDefault();
        box.open = true;
        focus("escalate-note");
        break;
      case "r": event.preventDefault(); focus("release"); break;        // Enter confirms
      case "?": event.preventDefault(); var help = document.getElementById("help"); help.open = !help.open; break;
    }
  });

  // --- the lease -----------------------------------------------------------------------------
  var left = parseInt(page.dataset.leaseSeconds || "0", 10);
  var shown = document.getElementById("lease-left");
  var deadline = Date.now() + left * 1000;
  var lastActivity = Date.now();
  ["keydown", "mousemove", "input", "scroll"].forEach(function (name) {
    document.addEventListener(name, function () { lastActivity = Date.now(); }, { passive: true });
  });

  // The countdown changes every second on screen, but a screen reader is told only when a
  // threshold is crossed (5 minutes left, 1 minute left, expired), through a polite live
  // region that is not the countdown itself.
  var announce = document.getElementById("lease-announce");
  var THRESHOLDS = [
    [0, "Your lease has expired: your answer may not be saved. Renew, or claim the next task."],
    [60, "One minute left on your lease."],
    [300, "Five minutes left on your lease."]
  ];
  var told = null;

  function tell(seconds) {
    if (!announce) return;
    var due = null;
    for (var i = 0; i < THRESHOLDS.length; i++) {
      if (seconds <= THRESHOLDS[i][0]) { due = THRESHOLDS[i]; break; }
    }
    if (told === null) { told = due ? due[0] : Infinity; return; }  // nothing on page load
    if (due && due[0] < told) { told = due[0]; announce.textContent = due[1]; }
    if (!due) told = Infinity;  // renewed: the thresholds apply again
  }

  function render() {
    var seconds = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    var m = Math.floor(seconds / 60), s = seconds % 60;
    shown.textContent = seconds > 0 ? m + ":" + (s < 10 ? "0" : "") + s : "expired — your answer may not be saved";
    shown.parentElement.classList.toggle("bad", seconds < 120);
    tell(seconds);
  }

  var LOST = "Your lease on this task was lost: your answer will not be saved. Claim the next task.";
  var lost = false;

  // The server's reason (a 409 {"error": {"message"}}), or a plain one when the reply is not JSON.
  function leaseLost(message) {
    lost = true;
    var box = document.getElementById("lease-lost");
    box.textContent = message || LOST;
    box.hidden = false;  // role="alert": read out once
    shown.textContent = "none";
    shown.parentElement.classList.add("bad");
  }

  function renew() {
    if (lost) return;
    fetch(page.dataset.renewUrl, {
      method: "POST",
      headers: { "X-CSRFToken": csrf(), "Accept": "application/json" },
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().catch(function () { return {}; })
        .then(function (body) { return [response.ok, body]; });
    }).then(function (result) {
      if (result[0]) { deadline = Date.parse(result[1].lease_expires_at); render(); return; }
      var error = result[1].error;
      leaseLost(error && error.message);
    }).catch(function () { /* offline: the countdown tells the reviewer */ });
  }

  if (shown) {
    render();
    setInterval(function () { if (!lost) render(); }, 1000);
    // The Renew button renews in place instead of reloading the page (and the typed answer).
    document.getElementById("renew").form.addEventListener("submit", function (event) {
      event.preventDefault();
      renew();
    });
    // Renew while the reviewer is actually working: active in the last 5 minutes.
    setInterval(function () {
      if (Date.now() - lastActivity < 5 * 60 * 1000 && deadline - Date.now() < 10 * 60 * 1000) renew();
    }, 60 * 1000);
  }
  page.dataset.ready = "true";  // the keys work from now on (browser tests wait for this)
})();
