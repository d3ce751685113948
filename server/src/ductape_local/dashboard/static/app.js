// ductape-local dashboard. Reads the server's own JSON routes (the same envelope every client gets)
// with the session cookie and the X-Ductape-Dashboard header; never sees the access key after
// sign-in. Every value is rendered as text (text nodes and textContent only), so a webhook name or url
// holding markup shows as that markup's text.
"use strict";

const STATUSES = ["pending", "delivered", "failed"];
const PAGE = 50;
const COUNT_PAGE = 250;
const COUNT_PAGES = 4; // counting by listing (a server without the summary route) stops at 1000+
const POLL_MS = 400;
const POLL_LIMIT_MS = 15000;
// How long a rotated registration's old link keeps forwarding (the rotate route's grace_seconds).
const GRACES = [[3600, "old link works 1 hour more"], [86400, "old link works 1 day more"], [0, "old link stops now"]];

const state = {
  products: [],
  product: null,
  status: null,          // the delivery filter: null for all
  cursor: null,
  selected: null,        // the event id whose timeline is open
  registrations: new Map(),
};

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// ---- DOM helpers: text only ------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "onclick") node.addEventListener("click", value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

function when(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return String(iso);
  return moment.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

let noticeTimer = null;
function notice(message, bad) {
  const box = $("notice");
  box.textContent = message;
  box.className = bad ? "notice bad" : "notice";
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, bad ? 9000 : 5000);
}

// ---- the API -----------------------------------------------------------------------------------------

async function api(method, path, body) {
  const options = {method, credentials: "same-origin", cache: "no-store", headers: {"X-Ductape-Dashboard": "1"}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let document_ = null;
  try { document_ = await response.json(); } catch (_) { document_ = null; }
  if (response.status === 401) {
    showSignIn();
    throw new ApiFailure(401, (document_ && document_.errors) || "signed out");
  }
  if (!response.ok || !document_ || document_.status !== true) {
    throw new ApiFailure(response.status, (document_ && document_.errors) || `HTTP ${response.status}`);
  }
  return document_;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined && value !== "") search.set(name, value);
  }
  return search.toString();
}

async function webhooksOf(product, accessTag) {
  const webhooks = [];
  let cursor = null;
  do {
    const page = await api("GET", "/webhooks/v1/webhooks?" + query({product, access_tag: accessTag, limit: 250, cursor}));
    webhooks.push(...page.data);
    cursor = page.meta && page.meta.next_cursor;
  } while (cursor);
  return webhooks;
}

// The counts per status: the summary route where the server has it, else the listing, counted.
async function deliveryCounts(product) {
  try {
    const summary = (await api("GET", "/webhooks/v1/deliveries/summary?" + query({product}))).data;
    if (summary && STATUSES.every((s) => Number.isInteger(summary[s]))) {
      return Object.fromEntries(STATUSES.map((s) => [s, {n: summary[s], more: false}]));
    }
  } catch (error) {
    if (error.status === 401) throw error;
  }
  const counts = {};
  for (const status of STATUSES) {
    let n = 0, cursor = null, pages = 0;
    do {
      const page = await api("GET", "/webhooks/v1/deliveries?" + query({product, status, limit: COUNT_PAGE, cursor}));
      n += page.data.length;
      cursor = page.meta && page.meta.next_cursor;
      pages += 1;
    } while (cursor && pages < COUNT_PAGES);
    counts[status] = {n, more: Boolean(cursor)};
  }
  return counts;
}

// ---- sign-in -------------------------------------------------------------------------------------------

function showSignIn(message) {
  $("board").hidden = true;
  $("controls").hidden = true;
  $("signin").hidden = false;
  const error = $("signin-error");
  error.hidden = !message;
  error.textContent = message || "";
  $("access-key").focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $("access-key");
  const key = input.value;
  input.value = "";
  const response = await fetch("/dashboard/session", {
    method: "POST", credentials: "same-origin", cache: "no-store",
    headers: {"Content-Type": "application/json", "X-Ductape-Dashboard": "1"},
    body: JSON.stringify({access_key: key}),
  });
  let answer = null;
  try { answer = await response.json(); } catch (_) { answer = null; }
  if (!response.ok) {
    showSignIn((answer && answer.errors) || `sign-in failed (HTTP ${response.status})`);
    return;
  }
  await start();
}

async function signOut() {
  await fetch("/dashboard/session", {method: "DELETE", credentials: "same-origin", headers: {"X-Ductape-Dashboard": "1"}});
  state.product = null;
  showSignIn();
}

// ---- products ----------------------------------------------------------------------------------------

async function start() {
  let products;
  try {
    products = (await api("GET", "/webhooks/v1/products")).data;
  } catch (error) {
    if (error.status !== 401) showSignIn(error.message);
    return;
  }
  state.products = products;
  $("signin").hidden = true;
  $("board").hidden = false;
  $("controls").hidden = false;
  const select = clear($("product"));
  for (const product of products) select.append(el("option", {value: product.tag}, product.tag));
  if (!products.length) {
    notice("This access key may use no product.", true);
    return;
  }
  const keep = products.some((p) => p.tag === state.product) ? state.product : products[0].tag;
  select.value = keep;
  await showProduct(keep);
}

function currentProduct() {
  return state.products.find((p) => p.tag === state.product);
}

async function showProduct(tag) {
  state.product = tag;
  state.status = null;
  closeDetail();
  await Promise.all([renderApps(), renderDeliveries()]);
}

// ---- apps, webhooks, registrations -------------------------------------------------------------------

function stateBadge(registration) {
  // `state` comes with the lifecycle routes (our extension); a server without them shows none.
  return registration.state ? [el("span", {class: `badge ${registration.state} state`}, registration.state), " "] : null;
}

function providerCell(registration) {
  const provider = registration.provider_registration;
  if (!provider) return el("span", {class: "muted", title: "no provider registration endpoint: paste the link"}, "link only");
  const parts = [el("span", {class: `badge ${provider.status}`}, provider.status)];
  if (provider.http_status) parts.push(" ", el("span", {class: "muted"}, `HTTP ${provider.http_status}`));
  if (provider.error) parts.push(el("span", {class: "why"}, provider.error));
  return el("div", {}, parts);
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const scratch = el("textarea", {readonly: true, class: "offscreen"});
  scratch.value = text;
  document.body.append(scratch);
  scratch.select();
  document.execCommand("copy");
  scratch.remove();
}

function copyButton(link) {
  const button = el("button", {type: "button", class: "small copy", title: "Copy the link", "aria-label": "Copy link"}, "Copy");
  button.addEventListener("click", async () => {
    try {
      await copyText(link);
      button.textContent = "Copied";
    } catch (_) {
      button.textContent = "Copy failed";
    }
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  });
  return button;
}

function actionsCell(registration) {
  const box = el("div", {class: "actions"});
  const buttons = [];
  // test, disable, enable and rotate are the lifecycle routes (our extension): a registration that
  // carries a `state` comes from a server that has them.
  if (registration.state) {
    buttons.push(el("button", {type: "button", class: "small test-button", disabled: registration.state !== "enabled",
      onclick: () => testRegistration(registration)}, "Send test"));
    if (registration.state === "enabled") {
      buttons.push(el("button", {type: "button", class: "small danger disable-button",
        onclick: () => setState(registration, "disable")}, "Disable"));
    } else {
      buttons.push(el("button", {type: "button", class: "small enable-button",
        onclick: () => setState(registration, "enable")}, "Enable"));
    }
  }
  if (Number.isInteger(registration.generation)) {
    buttons.push(el("button", {type: "button", class: "small rotate-button", onclick: () => askRotate()}, "Rotate"));
  }
  const showButtons = () => clear(box).append(...buttons);
  // Rotating changes the link the provider must send to: the grace period is chosen, then confirmed.
  function askRotate() {
    const grace = el("select", {class: "grace", "aria-label": "Grace period of the old link"},
      GRACES.map(([seconds, label]) => el("option", {value: String(seconds)}, label)));
    clear(box).append(grace,
      el("button", {type: "button", class: "small danger confirm-rotate",
        onclick: () => rotate(registration, Number(grace.value))}, "Rotate link"),
      el("button", {type: "button", class: "small ghost cancel-rotate", onclick: showButtons}, "Cancel"));
  }
  showButtons();
  return box;
}

function linkCell(registration) {
  const parts = [el("div", {class: "link-cell"}, el("code", {class: "link"}, registration.link), copyButton(registration.link))];
  if (Number.isInteger(registration.generation)) {
    parts.push(el("span", {class: "muted generation"}, `generation ${registration.generation}`));
  }
  const previous = registration.previous_link;
  if (previous) {
    parts.push(el("div", {class: "previous-link muted"}, "previous link ",
      el("code", {class: "old-link"}, previous.link), ` forwards until ${when(previous.expires_at)}`));
  }
  return parts;
}

function ingressNote(registration) {
  const ingress = registration.ingress;
  if (!ingress || (!ingress.rejected && !ingress.duplicates)) return null;
  return el("span", {class: "muted", title: ingress.last_rejection ? `last rejection: ${ingress.last_rejection.reason}` : ""},
    ` rejected ${ingress.rejected}, duplicates ${ingress.duplicates}`);
}

function registrationRow(webhook, registration, first, rows) {
  state.registrations.set(registration.uuid, {webhook, registration});
  const cells = [];
  if (first) {
    cells.push(el("td", {rowspan: rows}, el("span", {class: "webhook-name"}, webhook.name || webhook.tag),
      el("span", {class: "webhook-tag"}, webhook.tag)));
  }
  cells.push(
    el("td", {}, el("span", {class: "chip"}, `${registration.productEnv} → ${registration.appEnv}`)),
    el("td", {}, stateBadge(registration),
      el("span", {class: registration.active ? "badge delivered" : "badge idle",
        title: registration.active ? "an event was delivered" : "no event delivered yet"},
        registration.active ? "active" : "inactive"), ingressNote(registration)),
    el("td", {class: "url"}, el("span", {class: "mono"}, registration.method), " ", el("span", {class: "receiver mono"}, registration.url)),
    el("td", {}, linkCell(registration)),
    el("td", {class: "provider"}, providerCell(registration)),
    el("td", {}, actionsCell(registration)),
  );
  return el("tr", {"data-uuid": registration.uuid, "data-env": registration.productEnv}, cells);
}

async function renderApps() {
  const product = currentProduct();
  const box = clear($("apps"));
  $("envs").textContent = product ? `envs: ${product.envs.join(", ")}` : "";
  if (!product) return;
  state.registrations.clear();
  const listings = await Promise.all(product.connections.map((c) => webhooksOf(product.tag, c.access_tag)));
  product.connections.forEach((connection, index) => {
    const mapping = Object.entries(connection.envs).map(([env, appEnv]) => el("span", {class: "chip"}, `${env} → ${appEnv}`));
    const groups = [];
    for (const webhook of listings[index]) {
      const registrations = [...webhook.config].sort((a, b) => a.productEnv.localeCompare(b.productEnv));
      const body = el("tbody", {class: "webhook-group", "data-webhook": webhook.tag});
      groups.push(body);
      if (!registrations.length) {
        body.append(el("tr", {},
          el("td", {}, el("span", {class: "webhook-name"}, webhook.name || webhook.tag), el("span", {class: "webhook-tag"}, webhook.tag)),
          el("td", {colspan: 6, class: "none"}, "no registration")));
        continue;
      }
      registrations.forEach((registration, i) => body.append(registrationRow(webhook, registration, i === 0, registrations.length)));
    }
    box.append(el("div", {class: "app", "data-access-tag": connection.access_tag},
      el("div", {class: "app-head"}, el("span", {class: "app-title"}, connection.access_tag),
        el("span", {class: "muted"}, `app ${connection.app}`), el("span", {class: "mapping"}, mapping)),
      el("table", {class: "table registrations"},
        el("thead", {}, el("tr", {}, ["Webhook", "Env", "State", "Receiver", "Link", "Provider", ""].map((h) => el("th", {}, h)))),
        groups)));
  });
}

async function testRegistration(registration) {
  try {
    const answer = (await api("POST", `/webhooks/v1/registrations/${encodeURIComponent(registration.uuid)}/test`, {})).data;
    notice(`Test event ${answer.event_id} queued for ${registration.productEnv}.`);
    await renderDeliveries();
    await openDelivery(answer.event_id);
    await followDelivery(answer.event_id);
  } catch (error) {
    if (error.status !== 401) notice(`Test failed: ${error.message}`, true);
  }
}

async function setState(registration, action) {
  try {
    const answer = (await api("POST", `/webhooks/v1/registrations/${encodeURIComponent(registration.uuid)}/${action}`)).data;
    notice(`${registration.productEnv}: registration ${answer.state}${answer.changed ? "" : " (no change)"}.`);
    await renderApps();
  } catch (error) {
    if (error.status !== 401) notice(`${action} failed: ${error.message}`, true);
  }
}

// The page sends the generation it shows: when another client rotated the registration meanwhile, the
// server refuses (409 naming both generations) instead of rotating it twice.
async function rotate(registration, graceSeconds) {
  try {
    const answer = (await api("POST", `/webhooks/v1/registrations/${encodeURIComponent(registration.uuid)}/rotate`,
      {grace_seconds: graceSeconds, expected_generation: registration.generation})).data;
    const old = answer.previous_link ? `the old link forwards until ${when(answer.previous_link.expires_at)}`
      : "the old link answers 410 now";
    notice(`${registration.productEnv}: new link (generation ${answer.generation}); ${old}.`);
  } catch (error) {
    if (error.status !== 401) notice(`Rotate failed: ${error.message}`, true);
  }
  await renderApps();
}

// ---- deliveries ----------------------------------------------------------------------------------------

function renderFilters(counts) {
  const box = clear($("filters"));
  const total = STATUSES.reduce((sum, s) => sum + counts[s].n, 0);
  const more = STATUSES.some((s) => counts[s].more);
  const choices = [[null, "All", total, more], ...STATUSES.map((s) => [s, s[0].toUpperCase() + s.slice(1), counts[s].n, counts[s].more])];
  for (const [status, label, n, partial] of choices) {
    box.append(el("button", {type: "button", role: "tab", "data-status": status || "all",
      "aria-selected": String(state.status === status),
      onclick: () => { state.status = status; renderDeliveries(); }},
      label, el("span", {class: "count"}, partial ? `${n}+` : String(n))));
  }
}

function shortId(eventId) {
  return eventId.length > 16 ? eventId.slice(0, 15) + "…" : eventId;
}

function deliveryRow(delivery) {
  const row = el("tr", {"data-event-id": delivery.event_id, class: delivery.event_id === state.selected ? "selected" : ""},
    el("td", {class: "nowrap"}, when(delivery.received_at)),
    el("td", {class: "nowrap"}, el("span", {class: "mono event-id", title: delivery.event_id}, shortId(delivery.event_id)), delivery.test ? [" ", el("span", {class: "badge test"}, "test")] : null),
    el("td", {}, delivery.webhook_tag),
    el("td", {}, delivery.env),
    el("td", {}, el("span", {class: `badge ${delivery.status}`}, delivery.status)),
    el("td", {}, String(delivery.attempt_count)),
    el("td", {class: "why-cell"}, delivery.last_error || ""));
  row.addEventListener("click", () => openDelivery(delivery.event_id));
  return row;
}

async function renderDeliveries(append) {
  const product = state.product;
  if (!product) return;
  const body = $("deliveries").tBodies[0];
  if (!append) {
    state.cursor = null;
    const counts = await deliveryCounts(product);
    renderFilters(counts);
  }
  const page = await api("GET", "/webhooks/v1/deliveries?" + query({product, status: state.status, limit: PAGE, cursor: append ? state.cursor : null}));
  if (!append) clear(body);
  for (const delivery of page.data) body.append(deliveryRow(delivery));
  state.cursor = page.meta && page.meta.next_cursor;
  $("more").hidden = !state.cursor;
  $("deliveries-empty").hidden = body.rows.length > 0;
}

function timelineItem(kind, label, at, details) {
  return el("li", {class: kind}, el("span", {class: "when"}, when(at)), el("span", {class: "what"}, label), details);
}

function timeline(delivery) {
  const items = [timelineItem("info", "received", delivery.received_at,
    el("span", {class: "muted"}, ` ${delivery.method} to the receiver`))];
  for (const attempt of delivery.attempts) {
    const ok = attempt.status_code !== null && attempt.status_code >= 200 && attempt.status_code < 300;
    const label = `attempt ${attempt.n}: ` + (attempt.status_code === null ? "no answer" : `HTTP ${attempt.status_code}`);
    items.push(el("li", {class: ok ? "ok attempt" : "bad attempt"},
      el("span", {class: "when"}, `${when(attempt.at)} · ${attempt.latency_ms} ms`),
      el("span", {class: "what"}, label),
      attempt.error ? el("span", {class: "why"}, attempt.error) : null));
  }
  if (delivery.status === "delivered") items.push(timelineItem("ok", "delivered", delivery.delivered_at));
  else if (delivery.status === "failed") {
    items.push(timelineItem("bad", "dead letter", delivery.dead_letter && delivery.dead_letter.at,
      delivery.dead_letter ? el("span", {class: "why"}, delivery.dead_letter.reason) : null));
  } else items.push(timelineItem("wait", "pending: next attempt", delivery.next_attempt_at));
  return el("ol", {class: "timeline"}, items);
}

function renderDetail(delivery) {
  const box = clear($("detail"));
  box.hidden = false;
  box.parentElement.classList.add("open");
  const facts = [["status", el("span", {class: `badge ${delivery.status}`}, delivery.status)],
    ["webhook", delivery.webhook_tag], ["access tag", delivery.access_tag], ["env", delivery.env],
    ["registration", delivery.registration_uuid], ["attempts", String(delivery.attempt_count)]];
  if (delivery.duplicates) facts.push(["duplicates", String(delivery.duplicates)]);
  box.append(...[
    el("h3", {}, "Delivery ", el("span", {class: "mono", id: "detail-event-id"}, delivery.event_id)),
    delivery.test ? el("span", {class: "badge test"}, "test event") : null,
    el("dl", {}, facts.map(([name, value]) => [el("dt", {}, name), el("dd", {}, value)])),
    timeline(delivery),
    el("div", {class: "actions"},
      el("button", {type: "button", class: "primary", id: "replay", onclick: () => replay(delivery.event_id)}, "Replay"),
      el("button", {type: "button", class: "ghost", onclick: closeDetail}, "Close")),
  ].filter(Boolean));
}

function closeDetail() {
  state.selected = null;
  const box = $("detail");
  box.hidden = true;
  box.parentElement.classList.remove("open");
  for (const row of $("deliveries").tBodies[0].rows) row.classList.remove("selected");
}

async function openDelivery(eventId) {
  state.selected = eventId;
  for (const row of $("deliveries").tBodies[0].rows) row.classList.toggle("selected", row.dataset.eventId === eventId);
  try {
    renderDetail((await api("GET", `/webhooks/v1/deliveries/${encodeURIComponent(eventId)}`)).data);
  } catch (error) {
    if (error.status !== 401) notice(`Delivery ${eventId}: ${error.message}`, true);
  }
}

// Refreshes the open timeline until the delivery is no longer pending (bounded).
async function followDelivery(eventId) {
  const deadline = Date.now() + POLL_LIMIT_MS;
  while (Date.now() < deadline && state.selected === eventId) {
    const delivery = (await api("GET", `/webhooks/v1/deliveries/${encodeURIComponent(eventId)}`)).data;
    if (state.selected === eventId) renderDetail(delivery);
    if (delivery.status !== "pending") break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  await renderDeliveries();
}

async function replay(eventId) {
  const button = $("replay");
  if (button) button.disabled = true;
  try {
    const delivery = (await api("POST", `/webhooks/v1/deliveries/${encodeURIComponent(eventId)}/replay`)).data;
    notice(`Delivery ${eventId} queued for replay.`);
    renderDetail(delivery);
    await followDelivery(eventId);
  } catch (error) {
    if (error.status !== 401) notice(`Replay failed: ${error.message}`, true);
    if (button) button.disabled = false;
  }
}

// ---- wiring ------------------------------------------------------------------------------------------

// A failed call shows the server's message (a 401 has shown the sign-in form already); anything else
// is a fault of this script and stays an error of the page.
window.addEventListener("unhandledrejection", (event) => {
  const error = event.reason;
  if (!(error instanceof ApiFailure)) return;
  event.preventDefault();
  if (error.status !== 401) notice(error.message, true);
});

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", () => showProduct(state.product));
  $("product").addEventListener("change", (event) => showProduct(event.target.value));
  $("more").addEventListener("click", () => renderDeliveries(true));
  start();
});
