/*! Footprint tracker: page views and custom events to POST /api/footprints, no cookies,
 *  honours Do-Not-Track.
 *  <script src="https://footprint.example/tracker.js" data-api="https://footprint.example"
 *          data-domain="shop.example" defer></script>
 *  footprint.track("Signup", { props: { plan: "pro" } });
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__footprintTracker) return; // included twice: count once
  var api = (script.getAttribute("data-api") || new URL(script.src).origin).replace(/\/+$/, "");
  var endpoint = api + "/api/footprints";
  // The site the footprints belong to: data-domain, else the page's own host name.
  var site = (script.getAttribute("data-domain") || location.hostname || "").toLowerCase();
  var lastPath = null;

  function optedOut() {
    return navigator.doNotTrack === "1" || window.doNotTrack === "1";
  }

  function send(body) {
    body.site = site;
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
    send(body);
  }

  // A custom event on the current page: footprint.track("Signup", { props: { plan: "pro" } }).
  // Props are strings (numbers and booleans are sent as text); the API refuses more than 30.
  function track(name, options) {
    if (optedOut() || !name) return;
    var props = {};
    var given = (options && options.props) || {};
    Object.keys(given).forEach(function (key) {
      var value = given[key];
      if (value !== null && value !== undefined && typeof value !== "object") props[key] = String(value);
    });
    send({
      method: "GET",
      link: (location.pathname || "/").slice(0, 2048),
      footprint_time: new Date().toISOString(),
      name: String(name),
      props: props
    });
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
  // Calls made before the script loaded (a stub pushing its arguments to footprint.q) count too.
  var queued = (window.footprint && window.footprint.q) || [];
  window.footprint = { track: track };
  pageview();
  queued.forEach(function (args) {
    track.apply(null, args);
  });
})();
