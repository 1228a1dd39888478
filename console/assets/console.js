// Tally console: the live figures of an account page.
//
// The page names its feed in data-feed (the console's relay of the query API's feed, resuming
// after the journal sequence the page was rendered at). Each event carries the account's
// post-state, so the figures are set from it, never added up here; then the history and the
// chart are fetched again, asking the query API to include that event (min_seq).
(function () {
  "use strict";

  // A feed names each event by its history type (`event:`); an EventSource hears only the
  // names it listens to. Every history type, the two issue 11 adds, and `message` for any
  // unnamed event.
  const TYPES = [
    "message", "deposit", "withdrawal", "transfer", "adjustment", "payment", "hold",
    "reversal", "refund",
  ];
  // Events often come in bursts (a batch, a transfer's two sides): one refresh per burst.
  const REFRESH_DELAY_MS = 150;

  function start() {
    const live = document.querySelector("[data-feed]");
    if (!live || typeof EventSource === "undefined") return;
    const status = document.getElementById("feed-status");
    const say = (text) => { if (status) status.textContent = text; };
    let timer = null;
    let lastSeq = null;

    function refresh() {
      timer = null;
      const history = document.getElementById("history");
      if (history && history.dataset.firstPage === "true" && window.htmx) {
        window.htmx.ajax("GET", history.dataset.url + "&min_seq=" + lastSeq,
          { target: "#history", swap: "outerHTML" });
      }
      const chart = document.getElementById("chart");
      if (chart && window.htmx) {
        window.htmx.ajax("GET", chart.dataset.url + "?min_seq=" + lastSeq,
          { target: "#chart", swap: "outerHTML" });
      }
    }

    function apply(event) {
      let data;
      try { data = JSON.parse(event.data); } catch (_) { return; }
      for (const key of ["balance", "held", "available"]) {
        const cell = document.getElementById(key);
        if (cell && typeof data[key] === "number") cell.textContent = String(data[key]);
      }
      if (event.lastEventId) lastSeq = event.lastEventId;
      live.dataset.seq = lastSeq || "";
      say("live · last event " + (data.event_type || data.type || event.type));
      if (lastSeq && timer === null) timer = setTimeout(refresh, REFRESH_DELAY_MS);
    }

    const source = new EventSource(live.dataset.feed);
    TYPES.forEach((type) => source.addEventListener(type, apply));
    // A reader too slow for the feed is cut off; the browser reconnects by itself and
    // resumes after the last event it saw (Last-Event-ID).
    source.addEventListener("lagged", () => say("catching up…"));
    source.onopen = () => say("live");
    source.onerror = () => say("reconnecting…");
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
