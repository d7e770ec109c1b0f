// lastmile ops dashboard: a live map, KPI tiles, charts and order timelines for one region.
// Open as /ops/dashboard?region=<id>#key=<ops key>: a URL fragment never leaves the browser
// (no request line, no access log, no Referer). ?key= still works but reaches the server's
// logs. The key goes to the API only as a Bearer header; the WebSocket gets a stream token
// (POST /v1/stream-tokens, valid a minute, fetched afresh for every connect) as a
// "bearer.<token>" subprotocol, so the key itself never travels in a URL or a handshake.
// The page then drops the key from its own address (history, bookmarks, screen shares) and
// keeps it in this tab's sessionStorage, so a reload still works and closing the tab forgets it.
(() => {
  "use strict";

  const KEY_SLOT = "lastmile.opsKey";
  const params = new URLSearchParams(location.search);
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const REGION = params.get("region") || "";
  const KEY = fragment.get("key") || params.get("key") || sessionStorage.getItem(KEY_SLOT) || "";
  if (params.has("key") || fragment.has("key")) {
    if (KEY) sessionStorage.setItem(KEY_SLOT, KEY);
    params.delete("key");
    fragment.delete("key");
    const rest = params.toString(), hash = fragment.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") +
      (hash ? "#" + hash : ""));
  }
  const STATUS_COLORS = {};
  const css = getComputedStyle(document.documentElement);
  for (const s of ["idle", "to_pickup", "at_pickup", "to_dropoff", "at_dropoff"]) {
    STATUS_COLORS[s] = css.getPropertyValue("--" + s).trim();
  }
  const ORDER_COLOR = css.getPropertyValue("--order").trim();
  const BAD = css.getPropertyValue("--bad").trim();

  // Everything the page knows, exposed for tests and for curious operators.
  const state = window.lastmileState = {
    region: null, brand: "lastmile", bbox: null, merchants: [], couriers: {}, orders: {}, kpis: null,
    connection: "connecting", eventsReceived: 0, dropped: 0, selectedOrder: null,
    timeline: [], serverOffsetS: 0, ready: false, errors: [],
  };

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function showError(message) {
    state.errors.push(message);
    const b = $("banner");
    b.textContent = message;
    b.hidden = false;
  }

  async function api(path, method = "GET") {
    const r = await fetch(path, { method, headers: { Authorization: "Bearer " + KEY },
                                  cache: "no-store" });
    if (!r.ok) {
      let detail = r.statusText;
      try { detail = (await r.json()).detail || detail; } catch (_) { /* not json */ }
      throw new Error(`${path}: ${r.status} ${detail}`);
    }
    return r.json();
  }

  const serverNow = () => Date.now() / 1000 + state.serverOffsetS;
  const fmtAge = (s) => s < 60 ? `${Math.max(0, Math.floor(s))}s`
    : s < 3600 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${String(Math.floor(s % 3600 / 60)).padStart(2, "0")}`;
  const fmtDur = (s) => s == null ? "–" : s < 60 ? `${Math.round(s)}s`
    : `${Math.floor(s / 60)}:${String(Math.round(s % 60)).padStart(2, "0")}`;
  const fmtTime = (epoch) => new Date(epoch * 1000).toLocaleTimeString([], { hour12: false });
  const short = (id) => id ? id.replace(/^([a-z]+_)(.{6}).*$/, "$1$2") : "–";

  // ---------------------------------------------------------------- map
  const map = { canvas: $("map"), w: 0, h: 0, dpr: 1, project: null, hits: [] };

  function resizeCanvas(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const rect = canvas.getBoundingClientRect();
    canvas.width = Math.max(1, Math.round(rect.width * dpr));
    canvas.height = Math.max(1, Math.round(rect.height * dpr));
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w: rect.width, h: rect.height };
  }

  // Equirectangular projection of the region's bounding box into the canvas, keeping the
  // aspect ratio true at the region's latitude (a degree of longitude shrinks by cos(lat)).
  function makeProjection(bbox, w, h, pad) {
    const midLat = (bbox.min_lat + bbox.max_lat) / 2;
    const kx = Math.cos(midLat * Math.PI / 180);
    const spanX = Math.max(1e-9, (bbox.max_lng - bbox.min_lng) * kx);
    const spanY = Math.max(1e-9, bbox.max_lat - bbox.min_lat);
    const scale = Math.min((w - 2 * pad) / spanX, (h - 2 * pad) / spanY);
    const ox = (w - spanX * scale) / 2, oy = (h - spanY * scale) / 2;
    return (lat, lng) => [ox + (lng - bbox.min_lng) * kx * scale, oy + (bbox.max_lat - lat) * scale];
  }

  function drawMap() {
    if (!state.bbox) return;
    const { ctx, w, h } = resizeCanvas(map.canvas);
    const P = map.project = makeProjection(state.bbox, w, h, 28);
    map.hits = [];
    ctx.clearRect(0, 0, w, h);
    // region outline and a faint 1 km-ish grid inside the bounding box
    const poly = state.region.polygon;
    ctx.beginPath();
    poly.forEach((v, i) => { const [x, y] = P(v.lat, v.lng); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.closePath();
    ctx.fillStyle = "#111925"; ctx.fill();
    ctx.save(); ctx.clip();
    ctx.strokeStyle = "#1a2432"; ctx.lineWidth = 1;
    const b = state.bbox;
    for (let i = 1; i < 10; i++) {
      const lat = b.min_lat + (b.max_lat - b.min_lat) * i / 10;
      const lng = b.min_lng + (b.max_lng - b.min_lng) * i / 10;
      let [x1, y1] = P(lat, b.min_lng), [x2, y2] = P(lat, b.max_lng);
      ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke();
      [x1, y1] = P(b.min_lat, lng); [x2, y2] = P(b.max_lat, lng);
      ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke();
    }
    ctx.restore();
    ctx.beginPath();
    poly.forEach((v, i) => { const [x, y] = P(v.lat, v.lng); i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
    ctx.closePath();
    ctx.strokeStyle = "#3b4b63"; ctx.lineWidth = 2; ctx.setLineDash([6, 4]); ctx.stroke();
    ctx.setLineDash([]);

    const now = serverNow();
    const orders = Object.values(state.orders);
    // pickup -> dropoff legs of open orders
    ctx.lineWidth = 1;
    for (const o of orders) {
      const [x1, y1] = P(o.pickup.lat, o.pickup.lng), [x2, y2] = P(o.dropoff.lat, o.dropoff.lng);
      ctx.strokeStyle = o.id === state.selectedOrder ? "#e3b341" : "rgba(227,179,65,0.22)";
      ctx.beginPath(); ctx.moveTo(x1, y1); ctx.lineTo(x2, y2); ctx.stroke();
    }
    // merchants
    for (const m of state.merchants) {
      const [x, y] = P(m.lat, m.lng);
      ctx.fillStyle = m.active ? "#c9d1d9" : "#4b5566";
      ctx.fillRect(x - 4.5, y - 4.5, 9, 9);
      map.hits.push({ kind: "merchant", id: m.id, x, y, label: m.name });
    }
    // open orders at their dropoff, with their age
    ctx.font = "11px ui-monospace, Menlo, Consolas, monospace";
    for (const o of orders) {
      const [x, y] = P(o.dropoff.lat, o.dropoff.lng);
      const late = now > o.eta_high_at;
      const selected = o.id === state.selectedOrder;
      ctx.beginPath(); ctx.arc(x, y, selected ? 6.5 : 4.5, 0, Math.PI * 2);
      ctx.fillStyle = late ? BAD : ORDER_COLOR; ctx.fill();
      if (selected) { ctx.strokeStyle = "#fff"; ctx.lineWidth = 2; ctx.stroke(); }
      ctx.fillStyle = late ? "#ffb4b0" : "#e8d9a8";
      ctx.fillText(fmtAge(now - o.placed_at), x + 7, y - 6);
      o.x = x; o.y = y;
      map.hits.push({ kind: "order", id: o.id, x, y });
    }
    // couriers on top, coloured by status
    for (const c of Object.values(state.couriers)) {
      const [x, y] = P(c.lat, c.lng);
      c.x = Math.round(x * 10) / 10; c.y = Math.round(y * 10) / 10;
      ctx.beginPath(); ctx.arc(x, y, 7, 0, Math.PI * 2);
      ctx.fillStyle = STATUS_COLORS[c.status] || STATUS_COLORS.idle; ctx.fill();
      ctx.strokeStyle = "#0d1117"; ctx.lineWidth = 2; ctx.stroke();
      map.hits.push({ kind: "courier", id: c.courier_id, x, y });
    }
    map.canvas.dataset.couriers = String(Object.keys(state.couriers).length);
    map.canvas.dataset.orders = String(orders.length);
    map.canvas.dataset.merchants = String(state.merchants.length);
  }

  map.canvas.addEventListener("click", (ev) => {
    const r = map.canvas.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    let best = null, bestD = 12;
    for (const h of map.hits) {
      if (h.kind !== "order") continue;
      const d = Math.hypot(h.x - x, h.y - y);
      if (d < bestD) { best = h; bestD = d; }
    }
    if (best) selectOrder(best.id);
  });

  // ---------------------------------------------------------------- charts
  function drawChart(canvas, points, key, color, rangeEl) {
    const { ctx, w, h } = resizeCanvas(canvas);
    ctx.clearRect(0, 0, w, h);
    if (!points.length) return;
    const values = points.map((p) => p[key]);
    const max = Math.max(1, ...values);
    const padL = 28, padR = 8, padT = 8, padB = 16;
    const x = (i) => padL + (w - padL - padR) * (points.length === 1 ? 1 : i / (points.length - 1));
    const y = (v) => padT + (h - padT - padB) * (1 - v / max);
    ctx.strokeStyle = "#222c3b"; ctx.lineWidth = 1; ctx.fillStyle = "#8b98a9";
    ctx.font = "10px -apple-system, Segoe UI, Roboto, sans-serif";
    for (const v of [0, max / 2, max]) {
      ctx.beginPath(); ctx.moveTo(padL, y(v)); ctx.lineTo(w - padR, y(v)); ctx.stroke();
      ctx.fillText(String(Math.round(v)), 4, y(v) + 3);
    }
    ctx.fillText(fmtTime(points[0].at).slice(0, 5), padL, h - 3);
    const last = fmtTime(points[points.length - 1].at).slice(0, 5);
    ctx.fillText(last, w - padR - ctx.measureText(last).width, h - 3);
    const grad = ctx.createLinearGradient(0, padT, 0, h - padB);
    grad.addColorStop(0, color + "55"); grad.addColorStop(1, color + "00");
    ctx.beginPath(); ctx.moveTo(x(0), y(0));
    values.forEach((v, i) => ctx.lineTo(x(i), y(v)));
    ctx.lineTo(x(values.length - 1), y(0)); ctx.closePath();
    ctx.fillStyle = grad; ctx.fill();
    ctx.beginPath();
    values.forEach((v, i) => i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v)));
    ctx.strokeStyle = color; ctx.lineWidth = 2; ctx.stroke();
    const lx = x(values.length - 1), ly = y(values[values.length - 1]);
    ctx.beginPath(); ctx.arc(lx, ly, 3, 0, Math.PI * 2); ctx.fillStyle = color; ctx.fill();
    rangeEl.textContent = `now ${values[values.length - 1]} · peak ${Math.max(...values)}`;
  }

  // ---------------------------------------------------------------- KPIs
  function setTile(kpi, value, text, sub, subId) {
    const tile = document.querySelector(`.tile[data-kpi="${kpi}"]`);
    const old = tile.dataset.value;
    tile.dataset.value = value == null ? "" : String(value);
    tile.querySelector(".value").textContent = text;
    if (subId) $(subId).textContent = sub;
    if (old !== "" && old !== tile.dataset.value) {
      tile.classList.add("flash");
      setTimeout(() => tile.classList.remove("flash"), 700);
    }
  }

  function renderKpis() {
    const k = state.kpis;
    if (!k) return;
    setTile("open_orders", k.open_orders, String(k.open_orders),
      k.open_past_eta ? `${k.open_past_eta} past quoted ETA` : "none past quoted ETA", "sub-open");
    const live = Object.keys(state.couriers).length;
    setTile("active_couriers", k.active_couriers, String(k.active_couriers),
      `${live} reporting position`, "sub-couriers");
    const c = k.click_to_door_s;
    setTile("click_to_door", c.p50 == null ? null : Math.round(c.p50), c.p50 == null ? "–" : fmtDur(c.p50),
      k.delivered ? `p50 · mean ${fmtDur(c.mean)} · p90 ${fmtDur(c.p90)} · ${k.delivered} delivered` : "no deliveries yet today",
      "sub-c2d");
    setTile("late_share", k.late_share, k.late_share == null ? "–" : `${Math.round(k.late_share * 100)}%`,
      k.delivered ? `${k.late} of ${k.delivered} after the high bound` : "no deliveries yet today", "sub-late");
    drawChart($("chart-orders"), k.series, "open_orders", "#e3b341", $("range-orders"));
    drawChart($("chart-couriers"), k.series, "active_couriers", "#3fb950", $("range-couriers"));
  }

  // ---------------------------------------------------------------- orders & timeline
  function renderOrders() {
    const body = $("orders-body");
    body.replaceChildren();
    const now = serverNow();
    const orders = Object.values(state.orders).sort((a, b) => a.placed_at - b.placed_at);
    if (!orders.length) {
      const tr = el("tr"); const td = el("td", "muted", "no open orders"); td.colSpan = 4;
      tr.append(td); body.append(tr);
    }
    for (const o of orders.slice(0, 40)) {
      const tr = el("tr");
      tr.dataset.orderId = o.id;
      if (o.id === state.selectedOrder) tr.classList.add("selected");
      const st = el("td"); st.append(el("span", "status", o.status.replace("_", " ")));
      tr.append(el("td", "mono", short(o.id)), st,
        el("td", now > o.eta_high_at ? "late" : "", fmtAge(now - o.placed_at)),
        el("td", "mono", short(o.courier_id)));
      tr.addEventListener("click", () => selectOrder(o.id));
      body.append(tr);
    }
  }

  async function selectOrder(orderId) {
    state.selectedOrder = orderId;
    $("timeline-order").textContent = orderId;
    renderOrders(); drawMap();
    try {
      const [events, order] = await Promise.all([
        api(`/v1/ops/orders/${encodeURIComponent(orderId)}/events`),
        api(`/v1/ops/orders/${encodeURIComponent(orderId)}`),
      ]);
      if (state.selectedOrder !== orderId) return;
      state.timeline = events.events;
      const list = $("timeline");
      list.replaceChildren();
      const t0 = events.events.length ? Date.parse(events.events[0].occurred_at) / 1000 : 0;
      for (const e of events.events) {
        const at = Date.parse(e.occurred_at) / 1000;
        const li = el("li");
        li.dataset.type = e.type;
        const what = el("div");
        what.append(el("div", "", e.type.replace("order.", "")),
          el("div", "who", `${e.actor.kind} ${short(e.actor.id)}`));
        li.append(what, el("span", "when", `${fmtTime(at)} · +${fmtDur(at - t0)}`));
        list.append(li);
      }
      const li = el("li");
      li.className = "note";
      li.append(el("div", "who", `quoted ETA ${order.eta ? fmtTime(Date.parse(order.eta.low) / 1000) + "–" + fmtTime(Date.parse(order.eta.high) / 1000) : "–"} · now ${order.status}`));
      list.append(li);
    } catch (err) { showError(String(err.message || err)); }
  }

  // ---------------------------------------------------------------- data loading
  async function loadOrders() {
    const r = await api(`/v1/ops/regions/${REGION}/open-orders`);
    state.serverOffsetS = r.at - Date.now() / 1000;
    state.orders = Object.fromEntries(r.orders.map((o) => [o.id, o]));
    renderOrders(); drawMap();
  }
  async function loadCouriers() {
    const r = await api(`/v1/ops/regions/${REGION}/couriers`);
    state.couriers = Object.fromEntries(r.couriers.map((c) => [c.courier_id, c]));
    drawMap();
  }
  async function loadKpis() {
    state.kpis = await api(`/v1/ops/regions/${REGION}/kpis?window_s=3600&step_s=60`);
    renderKpis();
  }

  const pending = {};
  function soon(name, fn, ms) {  // coalesce bursts of events into one reload
    if (pending[name]) return;
    pending[name] = setTimeout(() => { pending[name] = null; fn().catch((e) => showError(String(e.message || e))); }, ms);
  }

  function addFeed(msg) {
    const feed = $("feed");
    const li = el("li");
    li.append(el("span", "t", fmtTime(msg.occurred_at)), el("span", "k", msg.type),
      el("span", "mono", short(msg.subject_id)));
    feed.prepend(li);
    while (feed.children.length > 60) feed.lastChild.remove();
    $("event-count").textContent = `${state.eventsReceived} received`;
  }

  function onMessage(msg) {
    if (msg.type === "stream.hello") return;
    if (msg.type === "stream.dropped") { state.dropped = msg.dropped_total; return; }
    state.eventsReceived += 1;
    addFeed(msg);
    if (msg.type === "courier.moved") {
      const d = msg.data;
      state.couriers[msg.subject_id] = { courier_id: msg.subject_id, lat: d.lat, lng: d.lng,
        status: d.status, updated_at: msg.occurred_at };
      drawMap();
      if (state.kpis) $("sub-couriers").textContent = `${Object.keys(state.couriers).length} reporting position`;
    } else if (msg.type.startsWith("order.")) {
      const o = state.orders[msg.subject_id];
      if (o && msg.data.to_status) o.status = msg.data.to_status;
      soon("orders", loadOrders, 250);
      soon("kpis", loadKpis, 400);
      if (msg.subject_id === state.selectedOrder) soon("timeline", () => selectOrder(msg.subject_id), 300);
    } else if (msg.type.startsWith("courier.shift_")) {
      if (msg.type === "courier.shift_ended") { delete state.couriers[msg.subject_id]; drawMap(); }
      soon("kpis", loadKpis, 400);
    }
  }

  function setConnection(s) {
    state.connection = s;
    const pill = $("conn");
    pill.dataset.state = s;
    pill.textContent = s;
  }

  let backoffMs = 500;
  function retry() {
    setConnection("reconnecting");
    setTimeout(connect, backoffMs);
    backoffMs = Math.min(backoffMs * 2, 15000);
  }

  async function connect() {
    let token;
    try {
      token = (await api("/v1/stream-tokens", "POST")).token;
    } catch (err) {
      if (/: 40[13] /.test(String(err))) {
        setConnection("refused");
        showError(`live stream refused: ${err.message}`);
      } else {
        retry();
      }
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/v1/ops/regions/${REGION}/stream`,
      ["bearer." + token]);
    ws.onopen = () => {  // catch up on what happened between the first load and now
      setConnection("live"); backoffMs = 500;
      soon("orders", loadOrders, 0); soon("kpis", loadKpis, 0); soon("couriers", loadCouriers, 0);
    };
    ws.onmessage = (ev) => { try { onMessage(JSON.parse(ev.data)); } catch (e) { state.errors.push(String(e)); } };
    ws.onclose = (ev) => {
      if (ev.code >= 4400 && ev.code < 4500) {
        setConnection("refused");
        showError(`live stream refused (${ev.code}): ${ev.reason}`);
        return;
      }
      retry();
    };
  }

  // The tenant's branding (config.branding): its name, accent colour and logo.
  async function loadBrand() {
    const t = await api("/v1/ops/tenant");
    const b = t.config.branding || {};
    state.brand = b.display_name || t.name;
    $("brand-name").textContent = state.brand;
    document.body.dataset.tenant = t.id;
    if (b.primary_colour) document.documentElement.style.setProperty("--accent", b.primary_colour);
    if (b.logo_url) {
      const img = el("img");
      img.src = b.logo_url;
      img.alt = state.brand;
      $("brand-mark").replaceChildren(img);
    }
  }

  async function start() {
    if (!REGION || !KEY) {
      showError("open this page as /ops/dashboard?region=<region id>#key=<ops API key>");
      setConnection("refused");
      return;
    }
    try {
      const [m] = await Promise.all([api(`/v1/ops/regions/${REGION}/map`), loadBrand()]);
      state.region = m.region; state.bbox = m.bbox; state.merchants = m.merchants;
      $("region-name").textContent = `${m.region.name} · ${m.region.id}`;
      document.title = `${state.brand} · ${m.region.name}`;
      await Promise.all([loadCouriers(), loadOrders(), loadKpis()]);
      state.ready = true;
      document.body.dataset.ready = "true";
    } catch (err) {
      showError(String(err.message || err));
      setConnection("refused");
      return;
    }
    connect();
    setInterval(() => { $("clock").textContent = fmtTime(serverNow()); }, 1000);
    setInterval(() => { renderOrders(); drawMap(); }, 5000);           // ages tick
    setInterval(() => soon("kpis", loadKpis, 0), 15000);               // series advance
    setInterval(() => soon("couriers", loadCouriers, 0), 30000);       // expire silent couriers
    window.addEventListener("resize", () => { drawMap(); renderKpis(); });
  }

  start();
})();
