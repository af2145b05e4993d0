// plantilla console. Plain JavaScript, no build step, nothing from another origin.
// The session lives in an HttpOnly cookie the page never sees; the CSRF token is kept in
// memory only. Pages are hash routes (#/messages/msg_…) drawn with DOM calls (never
// innerHTML with data).
"use strict";

(function () {
  // --- Strings ------------------------------------------------------------------------------
  const STRINGS = {
    en: {
      skip: "Skip to content", signOut: "Sign out", account: "Account", langName: "English",
      otherLang: "Español", loading: "Loading…", overview: "Overview", messages: "Messages",
      templates: "Templates", channels: "Channels", batches: "Batches", callbacks: "Callback endpoints",
      conversations: "Conversations", signInTitle: "Sign in to the console",
      signInHelp: "Use the admin token (every account) or an account API key (that account only).",
      token: "Admin token or API key", signIn: "Sign in", signInFailed: "That token is not the admin token or an API key of this server.",
      lastHour: "Messages per minute, last hour", lastDay: "Messages per 30 minutes, last 24 hours",
      funnel: "Delivery funnel, last 24 hours", accepted: "accepted", failures: "Top failure codes, last 24 hours",
      noFailures: "No failed messages.", code: "Code", title: "Meta's title", count: "Messages", whatToDo: "What to do",
      queues: "Queues", channel: "Channel", depth: "Waiting", oldest: "Oldest", halted: "Halted channels",
      noneHalted: "No channel is halted.", resume: "Resume", resumed: "Channel resumed.", reason: "Reason",
      status: "Status", template: "Template", phone: "Phone number", batch: "Batch", from: "From", to: "To",
      any: "any", filter: "Filter", more: "More", noMessages: "No messages match.", queuedAt: "Queued",
      message: "Message", timeline: "Timeline", attempts: "Delivery attempts", noAttempts: "No attempts recorded yet.",
      attempt: "Attempt", finished: "Finished", outcome: "Outcome", error: "Error", components: "Components sent to Meta",
      callbacksFor: "Callbacks delivered for it", noCallbacks: "No callbacks.", event: "Event", url: "URL",
      response: "Response", nextRetry: "Next retry", name: "Name", language: "Language", category: "Category",
      quality: "Quality", unknown: "unknown", sendable: "Sendable", yes: "yes", no: "no", preview: "Preview",
      parameters: "Parameters", noParams: "This template has no parameters.", syncNow: "Sync now",
      synced: "Sync finished.", syncNothing: "No cloud channel to sync (sandbox templates are local).",
      sendTest: "Send a test", sendTo: "Send to (country code + number)", send: "Send", sentTest: "Test queued:",
      problems: "Problems", provider: "Provider", health: "Health", rate: "Messages per second", save: "Save",
      saved: "Saved.", rotate: "Rotate public token", rotated: "New public token (shown once):",
      confirmRotate: "Rotate the public token? Integrations using the old one stop working.",
      readOnly: "Only the operator (admin token) can change channels.", total: "Total", rejected: "Rejected",
      created: "Created", noBatches: "No batches yet.", endpoints: "Endpoints", noEndpoints: "No endpoints.",
      deliveries: "Recent deliveries", noDeliveries: "No deliveries yet.", events: "Events",
      noConversations: "No conversations match.", client: "Client", lastActivity: "Last activity",
      thread: "Thread", notFound: "Not found: this does not exist or is not yours.", back: "Back",
      received: "Received from the customer", replyTo: "reply to",
      live: "Live: refreshes every few seconds.", now: "now", minutes: "min", seconds: "s", apply: "Apply",
      noChannels: "No channels.",
      description: "Description", signedInAs: "Signed in as", operator: "operator (every account)",
      statuses: { scheduled: "scheduled", queued: "queued", sending: "sending", sent: "sent", delivered: "delivered", read: "read", failed: "failed", cancelled: "cancelled", pending: "pending", open: "open", closed: "closed" },
      advice: {
        131026: "The number is not on WhatsApp or cannot receive this message: check it with the customer.",
        131047: "More than 24 hours since the customer's last message: send a template, not free text.",
        131049: "Meta limits marketing messages to this user: try later or send utility content.",
        131050: "The user opted out of marketing: do not send marketing to this number.",
        131051: "Unsupported message type: check the template's components.",
        132000: "The number of parameters does not match the template: fix the values sent.",
        132001: "The template does not exist in this language at Meta: sync templates and check its name and language.",
        132005: "The text with its values is too long: shorten the values.",
        132007: "The content breaks WhatsApp policy: edit the template.",
        132012: "A parameter has the wrong format (e.g. media type): fix the values sent.",
        132015: "The template is paused for low quality: improve it or use another.",
        132016: "The template is disabled for low quality: create a new one.",
        131056: "Too many messages to the same number: they are retried later automatically.",
        130429: "Throughput limit reached: messages are retried automatically; lower the channel's rate.",
        131000: "A WhatsApp error: messages are retried automatically.",
        100: "Invalid parameter: check the channel's settings and the values sent.",
        permanent: "Permanent: retrying cannot help; fix the cause and send again.",
        retry: "Temporary: plantilla retries with backoff.",
        retry_channel: "Throughput: plantilla slows the channel and retries.",
        retry_recipient: "This recipient gets too many messages: retried later.",
        channel_halt: "The channel cannot send (token, permissions, payment): fix it, then Resume the channel.",
        none: "See Meta's error code reference."
      }
    },
    es: {
      skip: "Saltar al contenido", signOut: "Cerrar sesión", account: "Cuenta", langName: "Español",
      otherLang: "English", loading: "Cargando…", overview: "Resumen", messages: "Mensajes",
      templates: "Plantillas", channels: "Canales", batches: "Lotes", callbacks: "Endpoints de callback",
      conversations: "Conversaciones", signInTitle: "Iniciar sesión en la consola",
      signInHelp: "Usa el token de administración (todas las cuentas) o una API key de una cuenta (solo esa cuenta).",
      token: "Token de administración o API key", signIn: "Entrar", signInFailed: "Ese token no es el de administración ni una API key de este servidor.",
      lastHour: "Mensajes por minuto, última hora", lastDay: "Mensajes cada 30 minutos, últimas 24 horas",
      funnel: "Embudo de entrega, últimas 24 horas", accepted: "aceptados", failures: "Códigos de error más frecuentes, últimas 24 horas",
      noFailures: "Ningún mensaje fallido.", code: "Código", title: "Título de Meta", count: "Mensajes", whatToDo: "Qué hacer",
      queues: "Colas", channel: "Canal", depth: "En espera", oldest: "Más antiguo", halted: "Canales detenidos",
      noneHalted: "Ningún canal está detenido.", resume: "Reanudar", resumed: "Canal reanudado.", reason: "Motivo",
      status: "Estado", template: "Plantilla", phone: "Número de teléfono", batch: "Lote", from: "Desde", to: "Hasta",
      any: "cualquiera", filter: "Filtrar", more: "Más", noMessages: "Ningún mensaje coincide.", queuedAt: "En cola",
      message: "Mensaje", timeline: "Cronología", attempts: "Intentos de entrega", noAttempts: "Aún no hay intentos.",
      attempt: "Intento", finished: "Terminado", outcome: "Resultado", error: "Error", components: "Componentes enviados a Meta",
      callbacksFor: "Callbacks entregados", noCallbacks: "Sin callbacks.", event: "Evento", url: "URL",
      response: "Respuesta", nextRetry: "Próximo reintento", name: "Nombre", language: "Idioma", category: "Categoría",
      quality: "Calidad", unknown: "desconocida", sendable: "Se puede enviar", yes: "sí", no: "no", preview: "Vista previa",
      parameters: "Parámetros", noParams: "Esta plantilla no tiene parámetros.", syncNow: "Sincronizar ahora",
      synced: "Sincronización terminada.", syncNothing: "No hay canal cloud que sincronizar (las plantillas del sandbox son locales).",
      sendTest: "Enviar una prueba", sendTo: "Enviar a (código de país + número)", send: "Enviar", sentTest: "Prueba en cola:",
      problems: "Problemas", provider: "Proveedor", health: "Salud", rate: "Mensajes por segundo", save: "Guardar",
      saved: "Guardado.", rotate: "Rotar token público", rotated: "Nuevo token público (se muestra una vez):",
      confirmRotate: "¿Rotar el token público? Las integraciones que usan el anterior dejarán de funcionar.",
      readOnly: "Solo el operador (token de administración) puede cambiar canales.", total: "Total", rejected: "Rechazados",
      created: "Creado", noBatches: "Aún no hay lotes.", endpoints: "Endpoints", noEndpoints: "Sin endpoints.",
      deliveries: "Entregas recientes", noDeliveries: "Aún no hay entregas.", events: "Eventos",
      noConversations: "Ninguna conversación coincide.", client: "Cliente", lastActivity: "Última actividad",
      thread: "Hilo", notFound: "No encontrado: no existe o no es tuyo.", back: "Volver",
      received: "Recibido del cliente", replyTo: "respuesta a",
      live: "En vivo: se actualiza cada pocos segundos.", now: "ahora", minutes: "min", seconds: "s", apply: "Aplicar",
      noChannels: "Sin canales.",
      description: "Descripción", signedInAs: "Sesión de", operator: "operador (todas las cuentas)",
      statuses: { scheduled: "programado", queued: "en cola", sending: "enviando", sent: "enviado", delivered: "entregado", read: "leído", failed: "fallido", cancelled: "cancelado", pending: "pendiente", open: "abierta", closed: "cerrada" },
      advice: {
        131026: "El número no está en WhatsApp o no puede recibir este mensaje: verifícalo con el cliente.",
        131047: "Pasaron más de 24 horas desde el último mensaje del cliente: envía una plantilla, no texto libre.",
        131049: "Meta limita los mensajes de marketing a este usuario: prueba más tarde o envía contenido de utilidad.",
        131050: "El usuario se dio de baja del marketing: no le envíes marketing.",
        131051: "Tipo de mensaje no admitido: revisa los componentes de la plantilla.",
        132000: "La cantidad de parámetros no coincide con la plantilla: corrige los valores enviados.",
        132001: "La plantilla no existe en ese idioma en Meta: sincroniza y revisa nombre e idioma.",
        132005: "El texto con sus valores es demasiado largo: acorta los valores.",
        132007: "El contenido incumple la política de WhatsApp: edita la plantilla.",
        132012: "Un parámetro tiene un formato incorrecto (p. ej. tipo de medio): corrige los valores.",
        132015: "La plantilla está pausada por baja calidad: mejórala o usa otra.",
        132016: "La plantilla está desactivada por baja calidad: crea una nueva.",
        131056: "Demasiados mensajes al mismo número: se reintentan automáticamente más tarde.",
        130429: "Límite de rendimiento: se reintenta automáticamente; baja la velocidad del canal.",
        131000: "Error de WhatsApp: se reintenta automáticamente.",
        100: "Parámetro no válido: revisa la configuración del canal y los valores enviados.",
        permanent: "Permanente: reintentar no sirve; corrige la causa y vuelve a enviar.",
        retry: "Temporal: plantilla reintenta con espera creciente.",
        retry_channel: "Rendimiento: plantilla frena el canal y reintenta.",
        retry_recipient: "Este destinatario recibe demasiados mensajes: se reintenta más tarde.",
        channel_halt: "El canal no puede enviar (token, permisos, pago): corrígelo y luego reanuda el canal.",
        none: "Consulta la referencia de códigos de error de Meta."
      }
    }
  };
  const STATUS_ORDER = ["scheduled", "queued", "sending", "sent", "delivered", "read", "failed", "cancelled"];
  const STATUS_COLORS = { scheduled: "#9f7aea", cancelled: "#5b6472", queued: "#8a94a6", sending: "#6b7cff", sent: "#2f80ed", delivered: "#0b7a5c", read: "#16a34a", failed: "#d92d20" };
  const PAGES = ["overview", "messages", "templates", "channels", "batches", "callbacks", "conversations"];

  const LANG_KEY = "plantilla.console.lang";
  let lang = (function () {
    let saved = null;
    try { saved = window.localStorage.getItem(LANG_KEY); } catch (e) { saved = null; }
    if (saved === "es" || saved === "en") return saved;
    return (navigator.language || "en").toLowerCase().startsWith("es") ? "es" : "en";
  })();
  const t = (key) => (STRINGS[lang][key] !== undefined ? STRINGS[lang][key] : key);
  const statusName = (s) => STRINGS[lang].statuses[s] || s;

  // --- State ---------------------------------------------------------------------------------
  const state = { session: null, account: null, timer: null, generation: 0 };

  // --- DOM helpers ---------------------------------------------------------------------------
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") el.className = v;
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  const svg = (tag, attrs, ...children) => {
    const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
    for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return el;
  };
  const main = () => document.getElementById("main");
  function announce(text) {
    const a = document.getElementById("announcer");
    a.textContent = "";
    window.setTimeout(() => { a.textContent = text; }, 50);
  }
  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return d.toLocaleString(lang === "es" ? "es" : "en", { dateStyle: "short", timeStyle: "medium" });
  }
  function fmtAge(secs) {
    if (secs === null || secs === undefined) return "—";
    return secs >= 120 ? Math.round(secs / 60) + " " + t("minutes") : secs + " " + t("seconds");
  }
  const badge = (s, label) => h("span", { class: "badge " + s, "data-status": s }, label || statusName(s));
  function table(headers, rows, empty, label) {
    if (!rows.length) return h("p", { class: "muted" }, empty);
    return h("div", { class: "table-wrap" },
      h("table", { "aria-label": label || null },
        h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c)))))));
  }
  const link = (href, text, attrs) => h("a", Object.assign({ href: href }, attrs || {}), text);
  const panel = (title, ...children) => h("section", { class: "panel", "aria-label": title }, h("h2", {}, title), ...children);

  // --- API -----------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, body) { super((body && (body.detail || body.title)) || "HTTP " + status); this.status = status; this.body = body; }
  }
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      if (state.session) headers["X-CSRF-Token"] = state.session.csrfToken;
      if (body !== undefined) headers["Content-Type"] = "application/json";
    }
    const res = await fetch("/console/api" + path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.status === 401 && path !== "/session") {
      state.session = null;
      renderSignIn();
      throw new ApiError(401, data);
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }
  function withAccount(path, params) {
    const q = new URLSearchParams(params || {});
    if (state.account) q.set("account", state.account);
    for (const [k, v] of [...q.entries()]) if (v === "") q.delete(k);
    const s = q.toString();
    return path + (s ? "?" + s : "");
  }
  function errorBox(e) {
    if (e instanceof ApiError && e.status === 404) return h("p", { class: "notice error", role: "alert", "data-testid": "not-found" }, t("notFound"));
    let text = e.message;
    if (e instanceof ApiError && e.body && Array.isArray(e.body.errors) && e.body.errors.length) {
      text = e.body.errors.map((x) => x.field + ": " + x.message).join("; ");
    }
    return h("p", { class: "notice error", role: "alert" }, text);
  }

  // --- Chrome: navigation, language, account, sign-out ----------------------------------------
  function renderChrome(active) {
    document.documentElement.lang = lang;
    document.title = "plantilla · " + (active ? t(active) : "console");
    const skip = document.getElementById("skip-link");
    skip.textContent = t("skip");
    const sw = document.getElementById("lang-switch");
    sw.textContent = t("otherLang");
    sw.setAttribute("lang", lang === "es" ? "en" : "es");
    const out = document.getElementById("signout");
    out.textContent = t("signOut");
    const nav = document.getElementById("nav");
    const picker = document.getElementById("account-picker");
    const who = document.getElementById("whoami");
    if (!state.session) { nav.hidden = true; out.hidden = true; picker.hidden = true; who.hidden = true; return; }
    nav.hidden = false; out.hidden = false; who.hidden = false;
    const own = (state.session.accounts || []).find((a) => a.id === state.session.accountId);
    who.textContent = t("signedInAs") + " " + (state.session.role === "admin" ? t("operator") : (own ? own.name : state.session.accountId));
    nav.replaceChildren(h("ul", {}, PAGES.map((p) =>
      h("li", {}, link("#/" + p, t(p), { id: "nav-" + p, "aria-current": p === active ? "page" : null })))));
    document.getElementById("account-label").textContent = t("account");
    const select = document.getElementById("account-select");
    const accounts = state.session.accounts || [];
    select.replaceChildren(...accounts.map((a) => h("option", { value: a.id, selected: a.id === state.account ? true : null }, a.name)));
    picker.hidden = accounts.length === 0;
    select.disabled = state.session.role !== "admin";
  }

  // --- Sign-in -------------------------------------------------------------------------------
  function renderSignIn(message) {
    stopTimer();
    renderChrome(null);
    const err = h("p", { id: "signin-error", class: "error", role: "alert" }, message || "");
    const input = h("input", { id: "signin-token", name: "token", type: "password", autocomplete: "current-password", required: true, "aria-describedby": "signin-help" });
    const form = h("form", {
      id: "signin-form", onsubmit: async (ev) => {
        ev.preventDefault();
        err.textContent = "";
        try {
          state.session = await api("POST", "/session", { token: input.value });
          input.value = "";
          chooseAccount();
          if (!location.hash || location.hash === "#/" || location.hash === "#/signin") location.hash = "#/overview";
          else route();
        } catch (e) {
          err.textContent = e.status === 401 ? t("signInFailed") : e.message;
          input.focus();
        }
      }
    },
      h("label", { for: "signin-token" }, t("token"), input),
      h("button", { type: "submit", class: "primary", id: "signin-submit" }, t("signIn")),
      err);
    main().replaceChildren(h("div", { class: "panel signin" },
      h("h1", {}, t("signInTitle")), h("p", { id: "signin-help", class: "muted" }, t("signInHelp")), form));
    input.focus();
  }
  function chooseAccount() {
    const s = state.session;
    if (!s) return;
    if (s.role === "account") state.account = s.accountId;
    else if (!s.accounts.some((a) => a.id === state.account)) state.account = s.accounts.length ? s.accounts[0].id : null;
  }

  // --- Router --------------------------------------------------------------------------------
  function stopTimer() { if (state.timer) { window.clearTimeout(state.timer); state.timer = null; } }
  // Polls `draw` every `ms` while the route stays the same and `draw` does not answer false.
  function live(draw, ms) {
    const gen = state.generation;
    const tick = async () => {
      if (gen !== state.generation) return;
      let more = true;
      try { more = (await draw()) !== false; } catch (e) { if (!(e instanceof ApiError && e.status === 401)) console.warn(e); }
      if (more && gen === state.generation) state.timer = window.setTimeout(tick, ms);
    };
    state.timer = window.setTimeout(tick, ms);
  }
  async function route() {
    stopTimer();
    state.generation += 1;
    if (!state.session) {
      try { state.session = await api("GET", "/session"); chooseAccount(); } catch (e) { renderSignIn(); return; }
    }
    const hash = location.hash.replace(/^#\/?/, "");
    const [pathPart, queryPart] = hash.split("?");
    const parts = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
    const query = new URLSearchParams(queryPart || "");
    const page = PAGES.includes(parts[0]) ? parts[0] : "overview";
    renderChrome(page);
    main().replaceChildren(h("p", { class: "muted" }, t("loading")));
    try {
      switch (page) {
        case "messages": await (parts[1] ? messagePage(parts[1]) : messagesPage(query)); break;
        case "templates": await (parts[1] ? templatePage(parts[1]) : templatesPage()); break;
        case "channels": await channelsPage(); break;
        case "batches": await batchesPage(); break;
        case "callbacks": await callbacksPage(); break;
        case "conversations": await (parts[1] ? conversationPage(parts[1]) : conversationsPage(query)); break;
        default: await overviewPage();
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) return;
      main().replaceChildren(errorBox(e));
    }
  }
  function show(title, ...children) {
    main().replaceChildren(h("h1", { id: "page-title" }, title), ...children);
  }

  // --- Overview ------------------------------------------------------------------------------
  function ago(ms) {
    const minutes = Math.round(ms / 60000);
    return minutes >= 120 ? Math.round(minutes / 60) + " h" : minutes + " " + t("minutes");
  }
  function chart(series, id, label) {
    const buckets = new Map();
    for (const p of series.points) {
      if (!buckets.has(p.t)) buckets.set(p.t, {});
      buckets.get(p.t)[p.status] = p.n;
    }
    // Up to and including the bucket that holds now.
    const count = Math.max(1, Math.floor((Date.now() - series.since) / series.bucketMs) + 1);
    let max = 1;
    for (const b of buckets.values()) max = Math.max(max, Object.values(b).reduce((a, n) => a + n, 0));
    const W = 600, H = 110, bw = W / count;
    const bars = [];
    for (let i = 0; i < count; i++) {
      const at = series.since + i * series.bucketMs;
      const b = buckets.get(at) || {};
      let y = H;
      for (const s of STATUS_ORDER) {
        const n = b[s] || 0;
        if (!n) continue;
        const bh = (n / max) * (H - 10);
        y -= bh;
        bars.push(svg("rect", { x: (i * bw + 0.5).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 1).toFixed(1), height: bh.toFixed(1), fill: STATUS_COLORS[s] },
          svg("title", {}, new Date(at).toLocaleTimeString() + " · " + statusName(s) + ": " + n)));
      }
    }
    const total = series.points.reduce((a, p) => a + p.n, 0);
    const summary = label + ": " + total + " · " + STATUS_ORDER.map((s) => statusName(s) + " " + series.points.filter((p) => p.status === s).reduce((a, p) => a + p.n, 0)).join(", ");
    return h("figure", { class: "chart", id: id },
      svg("svg", { viewBox: "0 0 " + W + " " + (H + 14), role: "img", "aria-label": summary },
        svg("line", { x1: 0, y1: H, x2: W, y2: H, stroke: "#9aa5a0" }),
        svg("text", { x: 2, y: 10, "font-size": 10, fill: "#5b6762" }, String(max)),
        svg("text", { x: 2, y: H + 12, "font-size": 10, fill: "#5b6762" }, "−" + ago(Date.now() - series.since)),
        svg("text", { x: W - 2, y: H + 12, "font-size": 10, fill: "#5b6762", "text-anchor": "end" }, t("now")),
        ...bars),
      h("ul", { class: "legend", "aria-hidden": "true" }, STATUS_ORDER.map((s) => h("li", {}, h("i", { style: null, "data-color": s }), statusName(s)))));
  }
  function colorLegends(root) {
    // CSP forbids inline style attributes set from markup, but not from the CSSOM.
    for (const i of root.querySelectorAll("[data-color]")) i.style.background = STATUS_COLORS[i.dataset.color];
    for (const s of root.querySelectorAll("[data-width]")) {
      s.style.width = s.dataset.width + "%";
      if (s.dataset.fill) s.style.background = s.dataset.fill;
    }
  }
  function funnel(f) {
    const steps = [["accepted", f.accepted], ["sent", f.sent], ["delivered", f.delivered], ["read", f.read], ["failed", f.failed]];
    const top = Math.max(1, f.accepted);
    return h("ul", { class: "funnel", "data-testid": "funnel" }, steps.map(([s, n]) => {
      const pct = Math.round((n / top) * 100);
      return h("li", { "data-step": s },
        h("div", {}, (s === "accepted" ? t("accepted") : statusName(s)) + ": " + n + " (" + pct + "%)"),
        h("div", { class: "bar", role: "presentation" }, h("span", { "data-width": pct, "data-fill": STATUS_COLORS[s] || "#0b7a5c" })));
    }));
  }
  function advice(code, cls) {
    const a = STRINGS[lang].advice;
    return a[code] || a[cls] || a.none;
  }
  async function resumeChannel(id) {
    await api("POST", "/channels/" + encodeURIComponent(id) + "/resume", {});
    announce(t("resumed"));
  }
  async function overviewPage() {
    const root = h("div", {});
    show(t("overview"), h("p", { class: "muted" }, t("live")), root);
    const draw = async () => {
      const o = await api("GET", withAccount("/overview"));
      const canEdit = state.session.role === "admin";
      const halted = o.halted.length
        ? table([t("channel"), t("reason"), ""], o.halted.map((c) => [
          c.name + " (" + c.id + ")",
          c.healthError ? c.healthError.code + " · " + c.healthError.title : "—",
          canEdit ? h("button", { type: "button", class: "primary", "data-testid": "resume-" + c.id, onclick: async (ev) => { ev.target.disabled = true; try { await resumeChannel(c.id); await draw(); } catch (e) { ev.target.after(errorBox(e)); } } }, t("resume")) : h("span", { class: "muted" }, t("readOnly"))
        ]), t("noneHalted"), t("halted"))
        : h("p", { class: "muted", "data-testid": "none-halted" }, t("noneHalted"));
      const content = h("div", { class: "grid" },
        h("section", { class: "panel wide", "aria-label": t("lastHour") }, h("h2", {}, t("lastHour")), chart(o.hour, "chart-hour", t("lastHour"))),
        h("section", { class: "panel wide", "aria-label": t("lastDay") }, h("h2", {}, t("lastDay")), chart(o.day, "chart-day", t("lastDay"))),
        panel(t("funnel"), funnel(o.funnel)),
        h("section", { class: "panel wide", "aria-label": t("failures") }, h("h2", {}, t("failures")), table([t("code"), t("title"), t("count"), t("whatToDo")],
          o.failures.map((f) => [link("#/messages?status=failed", String(f.code)), f.title || "—", String(f.messages), advice(f.code, f.class)]), t("noFailures"), t("failures"))),
        panel(t("queues"), table([t("channel"), t("depth"), t("oldest")], o.queues.map((q) => [q.channelName, String(q.depth), fmtAge(q.oldestAgeSeconds)]), t("noChannels"), t("queues"))),
        h("section", { class: "panel", "aria-label": t("halted"), id: "halted" }, h("h2", {}, t("halted")), halted));
      colorLegends(content);
      root.replaceChildren(content);
    };
    await draw();
    live(draw, 3000);
  }

  // --- Messages ------------------------------------------------------------------------------
  async function messagesPage(query) {
    const [channels, templates] = await Promise.all([api("GET", withAccount("/channels")), api("GET", withAccount("/templates"))]);
    const field = (name, label, control) => h("label", { for: "f-" + name }, label, control);
    const select = (name, options) => h("select", { id: "f-" + name, name: name },
      h("option", { value: "" }, t("any")),
      options.map(([v, l]) => h("option", { value: v, selected: query.get(name) === v ? true : null }, l)));
    const input = (name, type) => h("input", { id: "f-" + name, name: name, type: type || "text", value: query.get(name) || "" });
    const dateValue = (name) => { const v = query.get(name); return v ? v.slice(0, 10) : ""; };
    const from = h("input", { id: "f-from", name: "from", type: "date", value: dateValue("from") });
    const to = h("input", { id: "f-to", name: "to", type: "date", value: dateValue("to") });
    const form = h("form", {
      class: "filters", role: "search", onsubmit: (ev) => {
        ev.preventDefault();
        const q = new URLSearchParams();
        for (const el of form.elements) {
          if (!el.name || !el.value) continue;
          if (el.name === "from") q.set("from", el.value + "T00:00:00Z");
          else if (el.name === "to") q.set("to", el.value + "T23:59:59Z");
          else q.set(el.name, el.value);
        }
        location.hash = "#/messages" + (q.toString() ? "?" + q : "");
      }
    },
      field("channelId", t("channel"), select("channelId", channels.data.map((c) => [c.id, c.name]))),
      field("status", t("status"), select("status", STATUS_ORDER.map((s) => [s, statusName(s)]))),
      field("templateId", t("template"), select("templateId", templates.data.map((x) => [x.id, x.name + " (" + x.language + ")"]))),
      field("phoneNumber", t("phone"), input("phoneNumber", "tel")),
      field("batchId", t("batch"), input("batchId")),
      field("from", t("from"), from), field("to", t("to"), to),
      h("button", { type: "submit", class: "primary" }, t("filter")));
    const names = new Map(templates.data.map((x) => [x.id, x.name]));
    const body = h("div", {});
    show(t("messages"), form, body);
    const params = {};
    for (const [k, v] of query.entries()) params[k] = v;
    let rows = [];
    const load = async (cursor) => {
      const page = await api("GET", withAccount("/messages", Object.assign({}, params, cursor ? { cursor } : {})));
      rows = rows.concat(page.data);
      const list = table([t("message"), t("status"), t("phone"), t("template"), t("queuedAt")],
        rows.map((m) => [link("#/messages/" + encodeURIComponent(m.id), m.id), badge(m.status), m.phoneNumber, names.get(m.templateId) || m.templateId, fmtTime(m.createdAt)]),
        t("noMessages"), t("messages"));
      body.replaceChildren(list, page.nextCursor ? h("button", { type: "button", class: "secondary", onclick: () => load(page.nextCursor) }, t("more")) : "");
    };
    await load(null);
  }

  function preview(p, params) {
    const pv = (p && p.preview) || p || {};
    const parts = [];
    if (pv.header) {
      if (pv.header.format === "TEXT") parts.push(h("div", { class: "bubble-header" }, pv.header.text));
      else if (pv.header.format === "LOCATION") parts.push(h("div", { class: "bubble-media", role: "img", "aria-label": "LOCATION" }, "📍 " + ((pv.header.location && pv.header.location.name) || "LOCATION")));
      else {
        const media = pv.header.media || {};
        const what = media.link || media.id || "";
        parts.push(h("div", { class: "bubble-media", role: "img", "aria-label": pv.header.format + (what ? ": " + what : "") }, pv.header.format + (what ? "\n" + what : "")));
      }
    }
    parts.push(h("div", { class: "bubble-body", "data-testid": "preview-body" }, pv.body || ""));
    if (pv.footer) parts.push(h("div", { class: "bubble-footer" }, pv.footer));
    const buttons = (pv.buttons || []).map((b) => h("span", {}, b.text || b.type));
    return h("div", { class: "phone", id: "template-preview", "aria-label": t("preview") },
      h("div", { class: "bubble" }, parts), buttons.length ? h("div", { class: "bubble-buttons" }, buttons) : "");
  }

  async function messagePage(id) {
    const root = h("div", {});
    show(t("message") + " " + id, link("#/messages", "← " + t("back")), root);
    const draw = async () => {
      const m = await api("GET", "/messages/" + encodeURIComponent(id));
      const times = m.statusTimes || {};
      const steps = ["queued", "sending", "sent", "delivered", "read"];
      if (times.scheduled || m.status === "scheduled") steps.unshift("scheduled");
      if (times.failed) steps.push("failed");
      if (times.cancelled) steps.push("cancelled");
      const timeline = h("ol", { class: "timeline", "data-testid": "timeline" }, steps.map((s) => h("li", {
        class: times[s] ? (s === "failed" ? "failed" : "done") : "", "data-status": s, "data-reached": times[s] ? "true" : "false"
      }, h("strong", {}, statusName(s)), " ", h("span", { class: "muted" }, times[s] ? fmtTime(times[s]) : "—"))));
      const facts = h("dl", { class: "facts" },
        h("dt", {}, t("status")), h("dd", { id: "message-status" }, badge(m.status)),
        h("dt", {}, t("phone")), h("dd", {}, m.phoneNumber),
        h("dt", {}, t("template")), h("dd", {}, link("#/templates/" + encodeURIComponent(m.templateId), m.templateName || m.templateId)),
        h("dt", {}, t("channel")), h("dd", {}, m.channelName || m.channelId),
        h("dt", {}, t("conversations")), h("dd", {}, link("#/conversations/" + encodeURIComponent(m.conversationId), m.conversationId)),
        m.batchId ? [h("dt", {}, t("batch")), h("dd", {}, m.batchId)] : "",
        m.error ? [h("dt", {}, t("error")), h("dd", { class: "error" }, m.error.code + " · " + m.error.title + (m.error.details ? " — " + m.error.details : ""))] : "",
        m.nextAttemptAt ? [h("dt", {}, t("nextRetry")), h("dd", {}, fmtTime(m.nextAttemptAt))] : "");
      const attempts = table([t("attempt"), t("finished"), t("outcome"), t("error")], m.attemptsList.map((a) => [String(a.attempt), fmtTime(a.finishedAt), a.outcome, a.error ? a.error.code + " · " + a.error.title : "—"]), t("noAttempts"), t("attempts"));
      const cbs = table([t("event"), t("url"), t("status"), t("response"), t("attempts"), t("nextRetry")], m.callbacks.map((d) => [d.eventType, d.url, d.status, d.lastResponseStatus === null ? (d.lastError || "—") : String(d.lastResponseStatus), String(d.attempts), fmtTime(d.nextAttemptAt)]), t("noCallbacks"), t("callbacksFor"));
      const content = h("div", { class: "grid" },
        panel(t("message"), facts),
        panel(t("timeline"), timeline),
        panel(t("preview"), preview(m.preview)),
        panel(t("attempts"), attempts),
        h("section", { class: "panel wide", "aria-label": t("components") }, h("h2", {}, t("components")), h("pre", { tabindex: "0", "data-testid": "components" }, JSON.stringify(m.components, null, 2))),
        h("section", { class: "panel wide", "aria-label": t("callbacksFor") }, h("h2", {}, t("callbacksFor")), cbs));
      root.replaceChildren(content);
      return m;
    };
    const final = (m) => ["read", "failed"].includes(m.status);
    if (!final(await draw())) live(async () => !final(await draw()), 1500);
  }

  // --- Templates -----------------------------------------------------------------------------
  async function syncButton(out) {
    return h("button", {
      type: "button", class: "secondary", id: "sync-templates", onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          const r = await api("POST", withAccount("/templates/sync"), {});
          const failed = r.channels.filter((c) => !c.ok);
          out.replaceChildren(h("p", { class: failed.length ? "notice error" : "notice", role: "status" },
            r.channels.length ? (failed.length ? failed.map((c) => c.channelId + ": " + c.error).join("; ") : t("synced")) : t("syncNothing")));
        } catch (e) { out.replaceChildren(errorBox(e)); }
        ev.target.disabled = false;
      }
    }, t("syncNow"));
  }
  async function templatesPage() {
    const list = await api("GET", withAccount("/templates"));
    const out = h("div", {});
    show(t("templates"), h("div", { class: "actions" }, await syncButton(out)), out,
      table([t("name"), t("language"), t("category"), t("status"), t("quality"), t("sendable")], list.data.map((x) => [
        link("#/templates/" + encodeURIComponent(x.id), x.name), x.language, x.category, badge(x.status, x.status), t("unknown"), x.sendable ? t("yes") : t("no")
      ]), "—", t("templates")));
  }
  async function templatePage(id) {
    const x = await api("GET", "/templates/" + encodeURIComponent(id));
    const previewBox = h("div", {}, preview(x.preview));
    const problems = h("div", {});
    const values = Object.assign({}, x.preview.params);
    const showProblems = (p) => problems.replaceChildren(p.problems.length ? h("ul", { class: "error" }, p.problems.map((e) => h("li", {}, e.field + ": " + e.message))) : "");
    let pending = null;
    const refresh = () => {
      window.clearTimeout(pending);
      pending = window.setTimeout(async () => {
        try {
          const p = await api("POST", "/templates/" + encodeURIComponent(id) + "/preview", { params: values });
          previewBox.replaceChildren(preview(p));
          showProblems(p);
        } catch (e) { problems.replaceChildren(errorBox(e)); }
      }, 250);
    };
    const paramInputs = x.params.length ? h("div", { class: "filters" }, x.params.map((p) => h("label", { for: "param-" + p }, "{{" + p + "}}",
      h("input", { id: "param-" + p, value: values[p] || "", oninput: (ev) => { values[p] = ev.target.value; refresh(); } })))) : h("p", { class: "muted" }, t("noParams"));
    const out = h("div", {});
    const to = h("input", { id: "test-to", type: "tel", inputmode: "numeric", autocomplete: "off", required: true });
    const channel = h("select", { id: "test-channel" }, x.channels.map((c) => h("option", { value: c.id }, c.name + " (" + c.provider + ")")));
    const result = h("div", { role: "status" });
    const testForm = h("form", {
      class: "actions", onsubmit: async (ev) => {
        ev.preventDefault();
        result.replaceChildren();
        try {
          const r = await api("POST", "/templates/" + encodeURIComponent(id) + "/test", { to: to.value.trim(), channelId: channel.value, params: values });
          result.replaceChildren(h("p", { class: "notice" }, t("sentTest") + " ", link("#/messages/" + encodeURIComponent(r.messageId), r.messageId)));
        } catch (e) { result.replaceChildren(errorBox(e)); }
      }
    }, h("label", { for: "test-to" }, t("sendTo"), to), h("label", { for: "test-channel" }, t("channel"), channel), h("button", { type: "submit", class: "primary" }, t("send")));
    show(t("template") + " " + x.name,
      link("#/templates", "← " + t("templates")),
      h("div", { class: "grid" },
        panel(t("preview"), previewBox, problems),
        panel(x.name, h("dl", { class: "facts" },
          h("dt", {}, t("status")), h("dd", {}, badge(x.status, x.status)),
          h("dt", {}, t("category")), h("dd", {}, x.category),
          h("dt", {}, t("language")), h("dd", {}, x.language),
          h("dt", {}, t("quality")), h("dd", {}, t("unknown")),
          h("dt", {}, t("sendable")), h("dd", {}, x.sendable ? t("yes") : (t("no") + (x.unsendableReason ? " — " + x.unsendableReason : ""))))),
        panel(t("parameters"), paramInputs),
        panel(t("sendTest"), testForm, result),
        panel(t("syncNow"), await syncButton(out), out)));
    showProblems(x.preview);
  }

  // --- Channels ------------------------------------------------------------------------------
  async function channelsPage() {
    const r = await api("GET", withAccount("/channels"));
    const notice = h("div", { role: "status" });
    const cards = r.data.map((c) => {
      const rate = h("input", { id: "rate-" + c.id, type: "number", min: 1, max: 10000, value: c.messagesPerSecond });
      const actions = r.canEdit ? h("div", { class: "actions" },
        h("form", {
          class: "inline", onsubmit: async (ev) => {
            ev.preventDefault();
            try { await api("PATCH", "/channels/" + encodeURIComponent(c.id), { messagesPerSecond: Number(rate.value) }); notice.replaceChildren(h("p", { class: "notice" }, t("saved"))); await channelsPage(); } catch (e) { notice.replaceChildren(errorBox(e)); }
          }
        }, h("label", { for: "rate-" + c.id }, t("rate"), rate), h("button", { type: "submit", class: "secondary" }, t("save"))),
        h("button", {
          type: "button", class: "danger", onclick: async () => {
            if (!window.confirm(t("confirmRotate"))) return;
            try { const x = await api("POST", "/channels/" + encodeURIComponent(c.id) + "/rotate-token", {}); notice.replaceChildren(h("p", { class: "notice" }, t("rotated") + " ", h("code", {}, x.publicToken))); } catch (e) { notice.replaceChildren(errorBox(e)); }
          }
        }, t("rotate")),
        c.health !== "ok" ? h("button", { type: "button", class: "primary", "data-testid": "resume-" + c.id, onclick: async () => { try { await resumeChannel(c.id); await channelsPage(); } catch (e) { notice.replaceChildren(errorBox(e)); } } }, t("resume")) : "")
        : h("p", { class: "muted" }, t("readOnly"));
      return h("section", { class: "panel", "aria-label": c.name, "data-channel": c.id },
        h("h2", {}, c.name),
        h("dl", { class: "facts" },
          h("dt", {}, "Id"), h("dd", {}, c.id),
          h("dt", {}, t("provider")), h("dd", {}, c.provider),
          h("dt", {}, t("status")), h("dd", {}, c.status),
          h("dt", {}, t("health")), h("dd", { "data-testid": "health-" + c.id }, badge(c.health, c.health), c.healthError ? " " + c.healthError.code + " · " + c.healthError.title : ""),
          h("dt", {}, t("rate")), h("dd", {}, String(c.messagesPerSecond)),
          h("dt", {}, t("depth")), h("dd", {}, String(c.queueDepth)),
          h("dt", {}, t("oldest")), h("dd", {}, fmtAge(c.oldestAgeSeconds))),
        actions);
    });
    show(t("channels"), notice, r.data.length ? h("div", { class: "grid" }, cards) : h("p", { class: "muted" }, t("noChannels")));
  }

  // --- Batches -------------------------------------------------------------------------------
  async function batchesPage() {
    const root = h("div", {});
    show(t("batches"), h("p", { class: "muted" }, t("live")), root);
    const draw = async () => {
      const r = await api("GET", withAccount("/batches"));
      const rows = r.data.map((b) => {
        const total = Math.max(1, b.accepted);
        const segs = STATUS_ORDER.filter((s) => b.byStatus[s]).map((s) => h("span", { "data-width": ((b.byStatus[s] / total) * 100).toFixed(1), "data-fill": STATUS_COLORS[s], title: statusName(s) + ": " + b.byStatus[s] }));
        const done = (b.byStatus.read || 0) + (b.byStatus.delivered || 0) + (b.byStatus.sent || 0) + (b.byStatus.failed || 0) + (b.byStatus.cancelled || 0);
        return [link("#/messages?batchId=" + encodeURIComponent(b.id), b.id), String(b.total), String(b.accepted), String(b.rejected),
          h("div", {}, h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": b.accepted, "aria-valuenow": done, "aria-label": b.id }, segs),
            h("span", { class: "muted" }, STATUS_ORDER.filter((s) => b.byStatus[s]).map((s) => statusName(s) + " " + b.byStatus[s]).join(" · "))),
          fmtTime(b.createdAt)];
      });
      const content = table([t("batch"), t("total"), t("accepted"), t("rejected"), t("status"), t("created")], rows, t("noBatches"), t("batches"));
      colorLegends(content);
      root.replaceChildren(content);
    };
    await draw();
    live(draw, 3000);
  }

  // --- Callback endpoints --------------------------------------------------------------------
  async function callbacksPage() {
    const r = await api("GET", withAccount("/callbacks"));
    const urls = new Map(r.endpoints.map((e) => [e.id, e.url]));
    show(t("callbacks"),
      panel(t("endpoints"), table([t("url"), t("events"), t("description"), t("created")], r.endpoints.map((e) => [e.url, e.eventTypes.join(", "), e.description || "—", fmtTime(e.createdAt)]), t("noEndpoints"), t("endpoints"))),
      h("br"),
      panel(t("deliveries"), table([t("created"), t("event"), t("url"), t("status"), t("response"), t("attempts"), t("error"), t("nextRetry")], r.deliveries.map((d) => [
        fmtTime(d.createdAt), d.messageId ? link("#/messages/" + encodeURIComponent(d.messageId), d.eventType) : d.eventType,
        urls.get(d.endpointId) || d.url, badge(d.status === "delivered" ? "read" : d.status === "failed" ? "failed" : "queued", d.status),
        d.lastResponseStatus === null ? "—" : String(d.lastResponseStatus), String(d.attempts), d.lastError || "—", fmtTime(d.nextAttemptAt)
      ]), t("noDeliveries"), t("deliveries"))));
  }

  // --- Conversations -------------------------------------------------------------------------
  async function conversationsPage(query) {
    const status = h("select", { id: "c-status", name: "status" }, h("option", { value: "" }, t("any")),
      ["pending", "open", "closed"].map((s) => h("option", { value: s, selected: query.get("status") === s ? true : null }, statusName(s))));
    const phone = h("input", { id: "c-phone", name: "phoneNumber", type: "tel", value: query.get("phoneNumber") || "" });
    const form = h("form", {
      class: "filters", role: "search", onsubmit: (ev) => {
        ev.preventDefault();
        const q = new URLSearchParams();
        if (status.value) q.set("status", status.value);
        if (phone.value.trim()) q.set("phoneNumber", phone.value.trim());
        location.hash = "#/conversations" + (q.toString() ? "?" + q : "");
      }
    }, h("label", { for: "c-status" }, t("status"), status), h("label", { for: "c-phone" }, t("phone"), phone), h("button", { type: "submit", class: "primary" }, t("filter")));
    const params = {};
    for (const [k, v] of query.entries()) params[k] = v;
    const r = await api("GET", withAccount("/conversations", params));
    show(t("conversations"), form, table([t("phone"), t("client"), t("status"), t("lastActivity")], r.data.map((c) => [
      link("#/conversations/" + encodeURIComponent(c.id), c.phoneNumber), c.clientName, badge(c.status), fmtTime(c.lastActivityAt)
    ]), t("noConversations"), t("conversations")));
  }
  async function conversationPage(id) {
    const c = await api("GET", "/conversations/" + encodeURIComponent(id));
    show(t("thread") + " · " + c.clientName + " (" + c.phoneNumber + ")",
      link("#/conversations", "← " + t("conversations")),
      h("p", {}, badge(c.status), " ", c.closeReason ? c.closeReason : ""),
      h("div", { class: "thread" }, threadItems(c).map((item) => item.inbound ? inboundBubble(item.inbound) : h("article", { class: "bubble", "aria-label": t("message") + " " + item.outbound.id },
        item.outbound.preview && item.outbound.preview.header && item.outbound.preview.header.format === "TEXT" ? h("div", { class: "bubble-header" }, item.outbound.preview.header.text) : "",
        h("div", { class: "bubble-body" }, (item.outbound.preview && item.outbound.preview.body) || ""),
        h("div", { class: "bubble-footer" }, link("#/messages/" + encodeURIComponent(item.outbound.id), item.outbound.templateName || item.outbound.id), " · ", badge(item.outbound.status), " ", fmtTime(item.outbound.createdAt))))));
  }
  // Both directions in order: a template by when it was accepted, an inbound message by when
  // it was received (RFC 3339 strings of one format compare as times).
  function threadItems(c) {
    const items = c.messages.map((m) => ({ at: m.createdAt, id: m.id, outbound: m }))
      .concat((c.inbound || []).map((m) => ({ at: m.receivedAt, id: m.id, inbound: m })));
    items.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : a.id < b.id ? -1 : 1));
    return items;
  }
  // What the customer wrote or clicked, in words.
  function inboundText(m) {
    if (m.text) return m.text;
    if (m.button) return m.button.text || m.button.payload || "";
    if (m.interactive) return m.interactive.title || m.interactive.id || "";
    if (m.media) return m.media.caption || m.media.filename || "[" + m.type + "]";
    if (m.location) return m.location.name || (m.location.latitude + ", " + m.location.longitude);
    if (m.reaction) return m.reaction.emoji || "";
    return "[" + m.type + "]";
  }
  function inboundBubble(m) {
    return h("article", { class: "bubble inbound", "aria-label": t("received") + " " + m.id },
      h("div", { class: "bubble-body" }, inboundText(m)),
      h("div", { class: "bubble-footer" }, m.type, m.replyTo ? [" · " + t("replyTo") + " ", link("#/messages/" + encodeURIComponent(m.replyTo), m.replyTo)] : "", " · ", fmtTime(m.receivedAt)));
  }

  // --- Start ---------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("skip-link").addEventListener("click", (ev) => { ev.preventDefault(); main().focus(); });
    document.getElementById("lang-switch").addEventListener("click", () => {
      lang = lang === "es" ? "en" : "es";
      try { window.localStorage.setItem(LANG_KEY, lang); } catch (e) { /* the choice lasts this page only */ }
      if (state.session) route(); else renderSignIn();
    });
    document.getElementById("signout").addEventListener("click", async () => {
      try { await api("DELETE", "/session"); } catch (e) { /* signed out either way */ }
      state.session = null;
      location.hash = "#/signin";
      renderSignIn();
    });
    document.getElementById("account-select").addEventListener("change", (ev) => { state.account = ev.target.value; route(); });
    window.addEventListener("hashchange", () => { if (state.session || location.hash !== "#/signin") route(); });
    route();
  });
})();
