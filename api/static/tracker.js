/*! Footprint tracker: page views to POST /api/footprints, no cookies, honours Do-Not-Track.
 *  <script src="https://footprint.example/tracker.js" data-api="https://footprint.example" defer></script>
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__footprintTracker) return; // included twice: count once
  var api = (script.getAttribute("data-api") || new URL(script.src).origin).replace(/\/+$/, "");
  var endpoint = api + "/api/footprints";
  var lastPath = null;

  function optedOut() {
    return navigator.doNotTrack === "1" || window.doNotTrack === "1";
  }

  function pageview() {
    var path = location.pathname || "/";
    // An SPA re-rendering the same path (query or hash changes) is not a new page view.
    if (optedOut() || path === lastPath) return;
    var first = lastPath === null;
    lastPath = path;
    var body = { method: "GET", link: path.slice(0, 2048), footprint_time: new Date().toISOString() };
    // The first view's referrer is where the visitor came from; later SPA views are internal.
    if (first && document.referrer) body.referrer = document.referrer.slice(0, 2048);
    var params = new URLSearchParams(location.search);
    ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"].forEach(function (key) {
      var value = params.get(key);
      if (value) body[key] = value.slice(0, 512);
    });
    var data = JSON.stringify(body);
    // text/plain is a CORS "simple" type: no preflight request, and the API parses the JSON anyway.
    var sent = false;
    try {
      sent = navigator.sendBeacon && navigator.sendBeacon(endpoint, new Blob([data], { type: "text/plain" }));
    } catch (e) {
      sent = false;
    }
    if (!sent && window.fetch) {
      fetch(endpoint, {
        method: "POST",
        body: data,
        headers: { "content-type": "text/plain" },
        keepalive: true,
        mode: "no-cors",
        credentials: "omit"
      }).catch(function () {});
    }
  }

  // Single-page apps: every pushState navigation and back/forward is a page view.
  var push = history.pushState;
  if (push) {
    history.pushState = function () {
      var result = push.apply(this, arguments);
      pageview();
      return result;
    };
    window.addEventListener("popstate", pageview);
  }
  window.__footprintTracker = { pageview: pageview };
  pageview();
})();
