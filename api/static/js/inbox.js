/* The signed-in user's notifications over /ws (a user token: footprint token alice), with the
 * unread badge; clicking one marks it read. Independent of the stats credential. */
import { $, el } from "./dom.js";

const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host;
const inbox = { token: null, sock: null, lastId: 0, items: new Map(), unread: 0, delay: 500 };

function describe(n) {
  const p = n.payload || {};
  const actor = p.actor_id || "Someone";
  switch (n.noti_type) {
    case "create_post": return `${actor} published “${p.title || `post #${p.post_id}`}”`;
    case "create_parent_comment": return `${actor} commented on your post #${p.post_id}`;
    case "create_child_comment": return `${actor} replied to your comment on post #${p.post_id}`;
    case "follow_user": return `${actor} started following you`;
    case "penalty_user": return `You received a penalty from ${actor}: ${p.reason || ""}`;
    default: return n.noti_type;
  }
}

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 45) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

function setBadge(count) {
  inbox.unread = count;
  const badge = $("badge");
  badge.textContent = count > 99 ? "99+" : String(count);
  badge.dataset.count = String(count);
  $("unread-tag").textContent = `${count} unread`;
  $("unread-tag").hidden = count === 0;
  $("read-all").hidden = count === 0;
  if (count === 0) for (const n of inbox.items.values()) n.is_read = true;
}

function renderInbox(freshId) {
  const list = $("notifications");
  list.replaceChildren();
  const items = [...inbox.items.values()].sort((a, b) => b.id - a.id).slice(0, 100);
  for (const n of items) {
    const item = el("li", `notification${n.is_read ? "" : " unread"}${n.id === freshId ? " fresh" : ""}`);
    item.dataset.id = String(n.id);
    const body = el("span", "text", describe(n));
    body.append(el("span", "when", ago(n.created_time)));
    item.append(el("span", "dot"), body);
    item.addEventListener("click", () => markRead(n));
    list.append(item);
  }
  $("inbox-empty").textContent = inbox.token
    ? "No unread notifications. New ones appear here live."
    : "Sign in with a dev token to see your notifications live.";
  $("inbox-empty").hidden = items.length > 0;
}

async function authed(path) {
  const response = await fetch(path, { method: "POST", headers: { Authorization: `Bearer ${inbox.token}` } });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return response.json();
}

async function markRead(n) {
  if (n.is_read) return;
  const body = await authed(`/api/notifications/${n.id}/read`);
  n.is_read = true;
  setBadge(body.unread_count);
  renderInbox();
}

function signedIn(user) {
  $("login").hidden = true;
  $("login-error").hidden = true;
  $("account").hidden = false;
  $("user-name").textContent = user;
  $("avatar").textContent = user.slice(0, 1);
}

function signOut(error) {
  const sock = inbox.sock;
  inbox.sock = null;
  inbox.token = null;
  if (sock) sock.close();
  sessionStorage.removeItem("footprint.token");
  inbox.items.clear();
  inbox.lastId = 0;
  setBadge(0);
  $("account").hidden = true;
  $("login").hidden = false;
  $("login-error").hidden = !error;
  $("login-error").textContent = error || "";
  renderInbox();
}

function openInbox() {
  const query = inbox.lastId ? `?last_id=${inbox.lastId}` : "";
  // The token travels as a subprotocol ("bearer", token), never in a URL that could be logged.
  const sock = new WebSocket(`${wsBase}/ws${query}`, ["bearer", inbox.token]);
  inbox.sock = sock;
  sock.onmessage = (event) => {
    const m = JSON.parse(event.data);
    if (m.type === "hello") {
      inbox.delay = 500;
      signedIn(m.user);
      setBadge(m.unread_count);
      renderInbox();
    } else if (m.type === "notification") {
      inbox.items.set(m.id, m.notification);
      inbox.lastId = Math.max(inbox.lastId, m.id);
      setBadge(m.unread_count);
      renderInbox(m.id);
    } else if (m.type === "unread_count") {
      setBadge(m.unread_count);
      renderInbox();
    }
  };
  sock.onclose = (event) => {
    if (sock !== inbox.sock) return; // signed out or replaced
    if (event.code === 1008) {
      signOut(`Sign-in failed: ${event.reason || "invalid token"}`);
      return;
    }
    setTimeout(() => { if (sock === inbox.sock) openInbox(); }, inbox.delay);
    inbox.delay = Math.min(inbox.delay * 2, 10000);
  };
}

function signIn(token) {
  if (inbox.sock) signOut();
  inbox.token = token;
  sessionStorage.setItem("footprint.token", token);
  openInbox();
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (token) signIn(token);
  $("token").value = "";
});
$("logout").addEventListener("click", () => signOut());
$("bell").addEventListener("click", () => $("inbox").scrollIntoView({ behavior: "smooth", block: "center" }));
$("read-all").addEventListener("click", async () => {
  const body = await authed("/api/notifications/read-all");
  for (const n of inbox.items.values()) n.is_read = true;
  setBadge(body.unread_count);
  renderInbox();
});

/** Sign in again with the token this tab used last. */
export function initInbox() {
  const saved = sessionStorage.getItem("footprint.token");
  if (saved) signIn(saved);
  else renderInbox();
  setInterval(() => renderInbox(), 30000); // keeps "3 min ago" honest
}
