/* Who reads the stats: a site API key (fp_…) or an admin token kept in sessionStorage, or a
 * shared link (?link=fpl_…) that opens a read-only view of its site with no sign-in.
 *
 * An admin token may also arrive in the URL fragment, /#token=…, which browsers never send to a
 * server: it is moved to sessionStorage (this tab only) and out of the address bar at once. A
 * shared link stays in the address bar (it is the dashboard's address, a reload must keep
 * working); every API call sends the credential as a bearer header, never in its URL. */
import { $, el } from "./dom.js";

const ACCESS_KEY = "footprint.access-token";
const LINK_PREFIX = "fpl_";

export const access = {
  token: null,
  shared: false, // a shared link's read-only view
  kind: null, // "admin" | "key" | "link", as /api/stats/sites answered
  sites: [],
  refused: false,
};

/** The token of a /#token=… fragment, moved to sessionStorage and out of the address bar. */
function takeFragmentToken() {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) {
    sessionStorage.setItem(ACCESS_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return Boolean(token);
}

export function initAccess() {
  const link = new URLSearchParams(location.search).get("link");
  if (link && link.startsWith(LINK_PREFIX)) {
    access.token = link;
    access.shared = true;
  } else {
    takeFragmentToken();
    access.token = sessionStorage.getItem(ACCESS_KEY);
  }
  // A new token pasted into the address bar of an open page: start over with it.
  window.addEventListener("hashchange", () => { if (takeFragmentToken()) location.reload(); });
  $("access-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("access-token").value.trim();
    if (!token) return;
    sessionStorage.setItem(ACCESS_KEY, token);
    location.reload();
  });
  $("access-out").addEventListener("click", () => {
    sessionStorage.removeItem(ACCESS_KEY);
    location.reload();
  });
}

export function statsHeaders() {
  return access.token ? { Authorization: `Bearer ${access.token}` } : {};
}

export function setPill(state, text) {
  $("live-pill").dataset.state = state;
  $("live-state").textContent = text;
}

/** The page cannot read the stats: say how to get in, once, and stop asking the server. */
export function needsToken(reason) {
  if (access.refused) return;
  access.refused = true;
  const box = $("access-error");
  if (access.shared) {
    box.replaceChildren(
      el("strong", null, "This shared link no longer opens the stats"),
      document.createTextNode(reason ? ` (${reason}). ` : ". "),
      document.createTextNode("Ask the site's owner for a new one."),
    );
  } else {
    sessionStorage.removeItem(ACCESS_KEY);
    box.replaceChildren(
      el("strong", null, access.token ? "This token cannot read the stats" : "This dashboard needs a token"),
      document.createTextNode(reason ? ` (${reason}). ` : ". "),
      document.createTextNode("Paste a site's API key ("),
      el("code", null, "footprint sites add example.com"),
      document.createTextNode(" prints one) or an admin token ("),
      el("code", null, "footprint token --admin <name>"),
      document.createTextNode("), or open "),
      el("code", null, `${location.origin}/#token=<token>`),
      document.createTextNode(" (footprint run prints such a link)."),
    );
  }
  $("access-form").hidden = access.shared;
  $("access-gate").hidden = false;
  $("access-who").hidden = true;
  $("access-out").hidden = true;
  setPill("locked", access.shared ? "Link revoked" : "Needs a token");
}

/** Which sites the credential reads: the site switcher's choices. False when refused. */
export async function loadSites() {
  if (!access.token) {
    needsToken();
    return false;
  }
  try {
    const response = await fetch("/api/stats/sites", { headers: statsHeaders() });
    const body = await response.json();
    if (response.status === 401 || response.status === 403) {
      needsToken(body.detail);
      return false;
    }
    if (!response.ok) return Boolean(access.kind); // keep the last list through an outage
    access.kind = body.access;
    access.sites = body.sites;
    return true;
  } catch (e) {
    return Boolean(access.kind);
  }
}

/** "Site key", "Admin", "Shared link · read-only" next to the switcher. */
export function showWho() {
  const label = { admin: "Admin · every site", key: "Site API key", link: "Shared link · read-only" }[access.kind];
  $("access-who").textContent = label || "";
  $("access-who").dataset.kind = access.kind || "";
  $("access-who").hidden = !label;
  $("access-out").hidden = access.shared || !access.token;
}
