/*
 * The facilitator console: one live gameday in the browser, for the whole room.
 *
 * An adapter over the run's server (chaosrunner.gameday.server): GET /api/run
 * once for the scenario, then GET /api/stream for everything that happens -
 * the journal replayed and live, samples for the chart, snapshots of the
 * phase and conditions, the measured TTD/TTM, the report. Actions POST to
 * /api/marks, /api/checklist, /api/go and /api/abort; what they change comes
 * back through the stream like anybody else's action, so every open page
 * shows the same journal.
 *
 * Rules this file keeps (the server's CSP enforces the first two):
 * - Run data reaches the DOM only as text: textContent, createElement and
 *   setAttribute with fixed attribute names. Never innerHTML and friends.
 * - No inline script or style, no eval.
 * - The token comes from the link's #token=..., lives in sessionStorage
 *   (this origin, this tab) and goes out only as an Authorization header.
 *   Never a cookie: cookies are shared by every port of a host.
 */
"use strict";

(() => {
  const TOKEN_KEY = "chaosrunner.console.token";
  const NAME_KEY = "chaosrunner.console.name";
  const ROLE_KEY = "chaosrunner.console.role";
  const RETRY_FIRST_MS = 300;
  const RETRY_MAX_MS = 5000;
  const MAX_CHART_POINTS = 20000; // what the server keeps: five and a half hours at one a second
  const MAX_DRAWN_POINTS = 600;

  const ROLE_LABELS = {
    facilitator: "facilitator",
    incident_commander: "incident commander",
    responder: "responder",
    observer: "observer",
  };
  const ROLES_FOR = {
    facilitator: ["facilitator"],
    team: ["incident_commander", "responder"],
    observer: ["observer"],
  };
  const LAYERS = [
    ["synthetic", "Synthetic"],
    ["real_user", "Real user"],
    ["infrastructure", "Infrastructure"],
    ["", "Other alerts"],
  ];
  const VIA_LABELS = {
    synthetic: "synthetic monitoring",
    real_user: "real-user monitoring",
    infrastructure: "infrastructure monitoring",
    human: "a person",
    user_report: "a user report",
  };

  // ---------------------------------------------------------------- helpers

  const $ = (selector, root = document) => root.querySelector(selector);
  const byTestId = (id) => document.querySelector(`[data-testid="${id}"]`);
  const part = (root, name) => root.querySelector(`[data-part="${name}"]`);

  /** A new element with text (never markup) and fixed attributes. */
  function el(tag, options = {}, children = []) {
    const node = document.createElement(tag);
    if (options.className) node.className = options.className;
    if (options.text !== undefined && options.text !== null) node.textContent = String(options.text);
    for (const [name, value] of Object.entries(options.attrs || {})) node.setAttribute(name, String(value));
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function stateBadge(stateName) {
    const text = String(stateName || "unknown");
    const safeClass = text.replace(/[^a-z_]/gi, "");
    return el("span", { className: `state state-${safeClass}`, text: text.replace(/_/g, " ") });
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function parseTime(text) {
    if (!text) return null;
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? null : ms;
  }

  /** 12.3s, 4m5s, 1h2m - like the report (chaosrunner.report.fmt.duration). */
  function duration(seconds) {
    if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "-";
    const negative = seconds < 0;
    let rest = Math.abs(seconds);
    let text;
    if (rest < 60) {
      text = `${Math.round(rest * 10) / 10}s`;
    } else {
      rest = Math.round(rest);
      const h = Math.floor(rest / 3600);
      const m = Math.floor((rest % 3600) / 60);
      const s = rest % 60;
      text = h ? `${h}h${m ? `${m}m` : ""}` : `${m}m${s ? `${s}s` : ""}`;
    }
    return negative ? `-${text}` : text;
  }

  function countdown(seconds) {
    const total = Math.max(0, Math.floor(seconds));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const mm = String(m).padStart(2, "0");
    const ss = String(s).padStart(2, "0");
    return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
  }

  function clock(ms) {
    if (ms === null || ms === undefined) return "";
    return new Date(ms).toISOString().slice(11, 19);
  }

  function number(value) {
    if (value === null || value === undefined || !Number.isFinite(value)) return "no data";
    if (value === 0) return "0";
    const magnitude = Math.abs(value);
    if (magnitude >= 1e6 || magnitude < 1e-4) return value.toExponential(3);
    return String(Number(value.toPrecision(4)));
  }

  function human(text) {
    return String(text || "").replace(/_/g, " ");
  }

  // ---------------------------------------------------------------- state

  const state = {
    token: null,
    view: null, // GET /api/run
    capability: "observer",
    name: "",
    role: "",
    lastId: -1, // the last journal byte offset processed: never process one twice
    live: true,
    finished: false,
    phase: null,
    t0: null, // ms; from `measured` when it says, else the first fault in effect
    t0Measured: false,
    timeLeft: null, // {seconds, at: performance.now()}
    goDecided: false,
    awaitingGo: false,
    checklist: new Map(), // item index -> {checked, by}
    injectStates: new Map(), // name -> {state, detail}
    faultStates: new Map(),
    conditions: new Map(), // name -> {value, state}
    alerts: new Map(), // source/name -> {name, state, layer, source}
    timelineRows: [], // {at, seq, tr, offsetCell}
    seq: 0,
    series: { sli: [], steady: {} },
    reportShown: false,
    byeSeen: false,
    streamAbort: null,
  };

  // ---------------------------------------------------------------- token and identity

  function takeToken() {
    const hash = window.location.hash.replace(/^#/, "");
    const fromLink = new URLSearchParams(hash).get("token");
    if (fromLink) {
      sessionStorage.setItem(TOKEN_KEY, fromLink);
      // The token must not stay in the address bar, the history or a screenshot.
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function storedIdentity() {
    let name = "";
    let role = "";
    try {
      name = localStorage.getItem(NAME_KEY) || "";
      role = localStorage.getItem(ROLE_KEY) || "";
    } catch (error) {
      // storage disabled: ask every time
    }
    return { name, role };
  }

  function saveIdentity(name, role) {
    try {
      localStorage.setItem(NAME_KEY, name);
      localStorage.setItem(ROLE_KEY, role);
    } catch (error) {
      // storage disabled: keep it for this page only
    }
  }

  function askIdentity(allowCancel) {
    const form = byTestId("identity");
    const select = $("#identity-role", form);
    clear(select);
    const roles = ROLES_FOR[state.capability] || ["observer"];
    for (const role of roles) select.append(el("option", { text: ROLE_LABELS[role], attrs: { value: role } }));
    if (roles.includes(state.role)) select.value = state.role;
    part(form, "role-field").hidden = roles.length < 2;
    $("#identity-name", form).value = state.name;
    part(form, "cancel").hidden = !allowCancel;
    form.hidden = false;
    $("#identity-name", form).focus();
  }

  function showIdentity() {
    byTestId("whoami").textContent = state.capability === "observer"
      ? "an observer (watch only)"
      : `${state.name || "(no name yet)"}, ${ROLE_LABELS[state.role] || state.role}`;
    byTestId("change-identity").hidden = state.capability === "observer";
  }

  function setUpIdentity() {
    const form = byTestId("identity");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const name = $("#identity-name", form).value.trim();
      if (!name) {
        $("#identity-name", form).focus();
        return;
      }
      state.name = name;
      state.role = $("#identity-role", form).value;
      saveIdentity(state.name, state.role);
      form.hidden = true;
      showIdentity();
    });
    part(form, "cancel").addEventListener("click", () => {
      form.hidden = true;
    });
    byTestId("change-identity").addEventListener("click", () => askIdentity(true));

    const roles = ROLES_FOR[state.capability] || ["observer"];
    const stored = storedIdentity();
    state.name = stored.name;
    state.role = roles.includes(stored.role) ? stored.role : roles[0];
    if (state.capability !== "observer" && (!stored.name || !roles.includes(stored.role))) askIdentity(false);
    showIdentity();
  }

  // ---------------------------------------------------------------- HTTP

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${state.token}`, Accept: "application/json" };
    const init = { method, headers, cache: "no-store", credentials: "omit" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (error) {
      throw new ApiError(0, "the run's server did not answer (has the run ended?)", null);
    }
    const type = response.headers.get("Content-Type") || "";
    if (type.startsWith("application/json")) {
      const data = await response.json().catch(() => null);
      if (!response.ok) {
        const message = data && typeof data.error === "string" ? data.error : `HTTP ${response.status}`;
        throw new ApiError(response.status, message, data);
      }
      return data;
    }
    const text = await response.text();
    if (!response.ok) throw new ApiError(response.status, `HTTP ${response.status}`, null);
    return text;
  }

  function fatal(message) {
    const box = byTestId("fatal");
    box.textContent = message;
    box.hidden = false;
    byTestId("live").hidden = true;
    setConnection("closed", "stopped");
  }

  function setConnection(kind, text) {
    const node = byTestId("connection");
    node.className = `conn conn-${kind}`;
    node.textContent = text;
  }

  // ---------------------------------------------------------------- the run view

  function renderView(view) {
    document.title = `${view.title} - chaosrunner console`;
    byTestId("run-title").textContent = view.title;
    byTestId("run-id").textContent = view.run_id;
    byTestId("run-description").textContent = view.description || "";
    byTestId("run-hypothesis").textContent = view.hypothesis || "-";
    byTestId("run-severity").textContent = view.expected_severity || "-";
    byTestId("run-owner").textContent = view.owner || "-";
    byTestId("run-mode").textContent = view.mode || "-";

    const faults = byTestId("faults");
    clear(faults);
    for (const fault of view.faults || []) {
      state.faultStates.set(fault.name, "planned");
      const item = el("li", { attrs: { "data-fault": fault.name } }, [
        el("strong", { text: fault.name }),
        el("span", { className: "mono", text: fault.kind }),
        el("span", { className: "hint", text: fault.start_s ? `starts at t0+${duration(fault.start_s)}` : "" }),
      ]);
      item.append(stateBadge("planned"));
      faults.append(item);
    }

    const conditions = byTestId("conditions");
    clear(conditions);
    for (const condition of view.abort_conditions || []) {
      const row = el("tr", { attrs: { "data-condition": condition.name } }, [
        el("td", {}, [el("strong", { text: condition.name }), el("div", { className: "hint mono", text: condition.expr })]),
        el("td", { className: "mono", text: "-" }),
        el("td", { className: "mono", text: `${condition.comparator} ${number(condition.threshold)}${condition.for_s ? ` for ${duration(condition.for_s)}` : ""}` }),
        el("td", {}, [stateBadge("waiting")]),
      ]);
      conditions.append(row);
    }
    if (!(view.abort_conditions || []).length) {
      conditions.append(el("tr", {}, [el("td", { text: "No abort conditions.", attrs: { colspan: 4 } })]));
    }
    renderAlerts();
    renderRunSheet(view);
    drawChart();
  }

  function updateFault(name, faultState) {
    state.faultStates.set(name, faultState);
    const item = byTestId("faults").querySelector(`li[data-fault="${CSS.escape(name)}"]`);
    if (!item) return;
    const old = item.querySelector(".state");
    if (old) old.replaceWith(stateBadge(faultState));
  }

  function updateCondition(name, value, conditionState) {
    const row = byTestId("conditions").querySelector(`tr[data-condition="${CSS.escape(name)}"]`);
    if (!row) return;
    state.conditions.set(name, { value, state: conditionState });
    row.children[1].textContent = number(value === null || value === undefined ? NaN : Number(value));
    row.children[3].replaceChildren(stateBadge(conditionState));
    row.classList.toggle("breached", conditionState === "firing");
  }

  function renderAlerts() {
    const box = byTestId("alerts");
    clear(box);
    for (const [layer, title] of LAYERS) {
      const alerts = [...state.alerts.values()].filter((alert) => (alert.layer || "") === layer);
      if (layer === "" && !alerts.length) continue;
      const list = el("ul");
      for (const alert of alerts) {
        list.append(el("li", {}, [
          stateBadge(alert.state),
          el("span", { text: alert.name }),
          el("span", { className: "hint", text: alert.source === "alertmanager" ? "Alertmanager" : "Prometheus" }),
        ]));
      }
      if (!alerts.length) list.append(el("li", { className: "hint", text: "nothing firing" }));
      box.append(el("div", { attrs: { "data-layer": layer || "other" } }, [el("h3", { text: title }), list]));
    }
  }

  // ---------------------------------------------------------------- the run sheet

  function renderRunSheet(view) {
    const sheet = view.run_sheet || { prerequisites: [], go_no_go: false, injects: [] };
    const section = byTestId("run-sheet");
    section.hidden = state.capability !== "facilitator";
    if (section.hidden) return;

    const list = part(section, "prerequisites");
    clear(list);
    sheet.prerequisites.forEach((text, index) => {
      const id = `prerequisite-${index}`;
      const box = el("input", { attrs: { type: "checkbox", id, "data-item": index } });
      box.addEventListener("change", () => tick(index, box));
      list.append(el("li", {}, [box, el("label", { text, attrs: { for: id } }), el("span", { className: "by" })]));
    });
    part(section, "no-prerequisites").hidden = sheet.prerequisites.length > 0;
    part(section, "go").hidden = !sheet.go_no_go;

    const injects = byTestId("run-sheet-injects");
    clear(injects);
    for (const inject of sheet.injects) {
      if (!state.injectStates.has(inject.name)) state.injectStates.set(inject.name, { state: "upcoming", detail: "" });
      const item = el("li", { attrs: { "data-inject": inject.name } }, [
        el("span", { className: "mono", text: `t0+${duration(inject.at_s)}` }),
        el("strong", { text: inject.name }),
        stateBadge(state.injectStates.get(inject.name).state),
        el("span", { className: "hint", text: `to ${inject.audience}${inject.unless ? `, unless ${inject.unless}` : ""}` }),
        el("div", { text: inject.text }),
        el("div", { className: "hint", attrs: { "data-part": "detail" } }),
      ]);
      injects.append(item);
    }
    part(section, "no-injects").hidden = sheet.injects.length > 0;

    byTestId("go-button").addEventListener("click", () => decide("go", false));
    byTestId("no-go-button").addEventListener("click", () => decide("no_go", false));
    const confirm = byTestId("go-confirm");
    part(confirm, "yes").addEventListener("click", () => decide("go", true));
    part(confirm, "no").addEventListener("click", () => {
      confirm.hidden = true;
      byTestId("go-button").focus();
    });
    refreshGo();
  }

  async function tick(index, box) {
    const wanted = box.checked;
    const error = part(byTestId("run-sheet"), "error");
    error.textContent = "";
    if (!requireName()) {
      box.checked = !wanted;
      return;
    }
    try {
      await api("POST", "/api/checklist", { item: index, checked: wanted, by: state.name });
    } catch (failure) {
      box.checked = !wanted;
      error.textContent = failure.message;
    }
  }

  function applyChecklist(event) {
    state.checklist.set(Number(event.item), { checked: Boolean(event.checked), by: event.by || "" });
    const box = byTestId("run-sheet").querySelector(`input[data-item="${Number(event.item)}"]`);
    if (!box) return;
    box.checked = Boolean(event.checked);
    const by = box.parentElement.querySelector(".by");
    by.textContent = event.by ? `(${event.checked ? "ticked" : "unticked"} by ${event.by})` : "";
  }

  function unchecked() {
    const prerequisites = (state.view.run_sheet && state.view.run_sheet.prerequisites) || [];
    return prerequisites.filter((_, index) => !(state.checklist.get(index) || {}).checked);
  }

  function refreshGo() {
    const enabled = state.awaitingGo && !state.goDecided && !state.finished;
    byTestId("go-button").disabled = !enabled;
    byTestId("no-go-button").disabled = !enabled;
    if (!enabled) byTestId("go-confirm").hidden = true;
  }

  async function decide(decision, confirmed) {
    const section = byTestId("run-sheet");
    const error = part(section, "error");
    error.textContent = "";
    if (!requireName()) return;
    const missing = unchecked();
    if (decision === "go" && missing.length && !confirmed) {
      const confirm = byTestId("go-confirm");
      part(confirm, "unchecked").textContent = missing.join("; ");
      confirm.hidden = false;
      part(confirm, "yes").focus();
      return;
    }
    byTestId("go-confirm").hidden = true;
    const body = { decision, by: state.name };
    const reason = $("#go-reason").value.trim();
    if (reason) body.reason = reason;
    try {
      await api("POST", "/api/go", body);
    } catch (failure) {
      error.textContent = failure.message;
    }
  }

  function applyDecision(event) {
    state.goDecided = true;
    const text = `${event.decision === "go" ? "Go" : "No-go"} by ${event.by || "unknown"}${event.reason ? `: ${event.reason}` : ""}`;
    part(byTestId("run-sheet"), "go-state").textContent = text;
    refreshGo();
  }

  function applyInject(name, injectState, detail) {
    state.injectStates.set(name, { state: injectState, detail });
    const item = byTestId("run-sheet-injects").querySelector(`li[data-inject="${CSS.escape(name)}"]`);
    if (!item) return;
    item.querySelector(".state").replaceWith(stateBadge(injectState));
    part(item, "detail").textContent = detail;
  }

  // ---------------------------------------------------------------- actions

  function requireName() {
    if (state.name) return true;
    askIdentity(false);
    return false;
  }

  async function postMark(form, fields) {
    const error = form.querySelector(".error");
    error.textContent = "";
    if (!requireName()) return false;
    const body = { ...fields, by: state.name };
    if (state.role && state.role !== "observer") body.role = state.role;
    const buttons = form.querySelectorAll("button");
    buttons.forEach((button) => { button.disabled = true; });
    try {
      await api("POST", "/api/marks", body);
      return true;
    } catch (failure) {
      error.textContent = failure.message;
      return false;
    } finally {
      buttons.forEach((button) => { button.disabled = state.finished; });
    }
  }

  function statusText(form) {
    const value = (name) => form.elements[name].value.trim().replace(/\.+$/, "");
    const parts = [];
    if (value("affected")) parts.push(`Affected: ${value("affected")}.`);
    if (value("hypothesis")) parts.push(`Hypothesis: ${value("hypothesis")}.`);
    if (value("owner")) parts.push(`Owner: ${value("owner")}.`);
    if (value("next")) parts.push(`Next update at ${value("next")} UTC.`);
    return parts.join(" ");
  }

  function suggestNextUpdate(form) {
    const every = state.view && state.view.status_update_every_s;
    if (!every || form.elements.next.value) return;
    form.elements.next.value = new Date(Date.now() + every * 1000).toISOString().slice(11, 16);
  }

  function setUpActions() {
    const actions = byTestId("actions");
    const abort = byTestId("abort");
    const canAct = state.capability === "facilitator" || state.capability === "team";
    actions.hidden = !canAct;
    abort.hidden = !canAct;
    if (!canAct) {
      // An observer gets no controls at all, not disabled ones.
      actions.remove();
      abort.remove();
      return;
    }
    const form = (name) => actions.querySelector(`form[data-form="${name}"]`);

    form("detected").addEventListener("submit", async (event) => {
      event.preventDefault();
      await postMark(event.target, { event: "detected", via: event.target.elements.via.value });
    });
    form("severity").addEventListener("submit", async (event) => {
      event.preventDefault();
      await postMark(event.target, { event: "severity", value: event.target.elements.value.value });
    });
    form("ic").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = event.target.elements.value;
      if (await postMark(event.target, { event: "ic", value: input.value })) input.value = "";
    });

    const status = form("status");
    const preview = part(status, "preview");
    const showPreview = () => { preview.textContent = statusText(status) || "(empty)"; };
    status.addEventListener("input", showPreview);
    status.addEventListener("focusin", () => { suggestNextUpdate(status); showPreview(); });
    showPreview();
    status.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (await postMark(status, { event: "status", value: statusText(status) })) {
        status.reset();
        showPreview();
      }
    });

    form("log").addEventListener("submit", async (event) => {
      event.preventDefault();
      const target = event.target;
      const input = target.elements.value;
      if (await postMark(target, { event: target.elements.kind.value, value: input.value })) input.value = "";
    });
    for (const button of form("milestones").querySelectorAll("button[data-mark]")) {
      button.addEventListener("click", () => postMark(form("milestones"), { event: button.getAttribute("data-mark") }));
    }
    form("milestones").addEventListener("submit", (event) => event.preventDefault());

    const step = byTestId("abort-confirm-step");
    byTestId("abort-button").addEventListener("click", () => {
      step.hidden = false;
      byTestId("abort-confirm").focus();
    });
    part(step, "cancel").addEventListener("click", () => {
      step.hidden = true;
      byTestId("abort-button").focus();
    });
    byTestId("abort-confirm").addEventListener("click", async () => {
      const error = part(abort, "error");
      const done = part(abort, "done");
      error.textContent = "";
      if (!requireName()) return;
      const body = { by: state.name };
      const reason = $("#abort-reason").value.trim();
      if (reason) body.reason = reason;
      byTestId("abort-confirm").disabled = true;
      try {
        const answer = await api("POST", "/api/abort", body);
        done.textContent = (answer && answer.detail) || "abort requested";
        step.hidden = true;
      } catch (failure) {
        error.textContent = failure.message;
      } finally {
        byTestId("abort-confirm").disabled = false;
      }
    });
  }

  function disableActions() {
    for (const control of document.querySelectorAll('[data-testid="actions"] button, [data-testid="abort"] button')) {
      control.disabled = true;
    }
  }

  // ---------------------------------------------------------------- timeline

  function responderText(event) {
    const value = event.value || "";
    const via = event.via ? ` (via ${VIA_LABELS[event.via] || human(event.via)})` : "";
    switch (event.event) {
      case "detected": return `noticed the incident${via}`;
      case "mitigated": return "marked the incident mitigated";
      case "resolved": return "marked the incident resolved";
      case "escalated": return "escalated the incident";
      case "severity": return `declared severity ${value}`;
      case "ic": return `named ${value} incident commander`;
      case "status": return `status update: ${value}`;
      case "change": return `production change: ${value}`;
      case "cause": return `declared root cause: ${value}`;
      case "note": return `note: ${value}`;
      default: return `${event.event || ""} ${value}`.trim();
    }
  }

  /** `alice`, or `alice (incident commander)` when the event says which role (as the report). */
  function person(event) {
    const who = event.by || "unknown";
    return event.role ? `${who} (${human(event.role)})` : who;
  }

  /** [source, who, what, emphasis] for one journal event, or null to leave it out (as the report does). */
  function describe(event) {
    const fault = event.fault || "";
    const system = (what, emphasis = false) => ["system", "chaosrunner", what, emphasis];
    switch (event.type) {
      case "phase":
        return event.phase === "awaiting_go" ? system("waiting for go/no-go from the facilitator") : null;
      case "fault_injecting": case "fault_reverting": case "responder_endpoint": case "abort_condition_source":
        return null;
      case "checklist":
        return ["team", person(event), `${event.checked ? "ticked" : "unticked"} prerequisite: ${event.text || ""}`, false];
      case "responder": {
        return ["team", person(event), responderText(event), ["detected", "mitigated", "escalated"].includes(event.event)];
      }
      case "run_started": return system(`run started: ${event.scenario_title || ""} (${event.mode || ""} mode)`);
      case "check": return system(`${event.ok ? "ok" : "FAILED"}: ${event.name || ""}${event.detail ? ` (${String(event.detail).split(" (")[0]})` : ""}`);
      case "fault_planned": return system(`planned fault ${fault}: ${event.summary || event.kind || ""}`);
      case "fault_injected": return system(`fault ${fault} injected (${event.kind || ""})`, true);
      case "fault_inject_failed": return system(`fault ${fault} could not be injected: ${event.error || ""}`, true);
      case "fault_reverted": return ["system", event.by === "recover" ? "chaosrunner recover" : "chaosrunner", `fault ${fault} reverted`, true];
      case "fault_revert_failed": return system(`fault ${fault} NOT reverted: ${event.error || ""}`, true);
      case "fault_still_in_flight": return system(`fault ${fault} still being injected after the reverts`, true);
      case "fault_outcome": return system(`fault ${fault} aftermath recorded`);
      case "toxic_switched": return ["system", event.by || "facilitator", `toxic ${event.toxic || ""} of fault ${fault} switched ${event.enabled ? "on" : "off"}`, true];
      case "condition": return ["monitoring", "abort monitor", `abort condition ${event.name || ""} ${event.state || ""} (value ${number(event.value)}; aborts when ${event.comparator || ""} ${number(event.threshold)})`, event.state === "firing"];
      case "prometheus": return ["monitoring", "abort monitor", `Prometheus ${event.state || ""}${event.error ? `: ${event.error}` : ""}`, event.state === "unreachable"];
      case "alert": return ["monitoring", event.source === "alertmanager" ? "Alertmanager" : "Prometheus", `alert ${event.name || ""} ${event.state || ""}${event.layer ? ` (${human(event.layer)})` : ""}`, false];
      case "abort": return system(`ABORT (${human(event.cause)}): ${event.detail || ""}`, true);
      case "faults_ending": return system(`ending the faults: ${event.reason || ""}`);
      case "run_finished": return system(`run finished: ${event.status || ""} - ${event.detail || ""}`);
      case "mitigation_unconfirmed": return system(String(event.detail || ""));
      case "escalation_due": return system(`escalation due: ${event.detail || ""}`, true);
      case "webhook": return system(`${human(event.event)} webhook ${event.ok ? "delivered" : "failed"}`);
      case "go_decision": {
        const said = event.decision === "go" ? "GO: inject the faults" : "NO-GO: call the gameday off";
        const unticked = Array.isArray(event.unchecked) && event.unchecked.length ? ` (not ticked: ${event.unchecked.join("; ")})` : "";
        return ["team", person(event), `${said}${event.reason ? ` - ${event.reason}` : ""}${unticked}`, true];
      }
      case "inject_fired": return ["system", "run sheet", `inject ${event.name || ""} to ${event.audience || "responders"}: ${event.text || ""}`, true];
      case "inject_skipped": return ["system", "run sheet", `inject ${event.name || ""} skipped: ${event.reason || ""}`, false];
      default: {
        const detail = event.detail || event.reason || "";
        return system(`${human(event.type)}${detail ? `: ${detail}` : ""}`);
      }
    }
  }

  function offsetText(at) {
    if (state.t0 === null) return clock(at);
    const seconds = (at - state.t0) / 1000;
    if (Math.abs(seconds) < 0.05) return "t0";
    return (seconds > 0 ? "t0+" : "t0-") + duration(Math.abs(seconds));
  }

  function addTimelineRow(event) {
    const described = describe(event);
    if (!described) return;
    const [source, who, what, emphasis] = described;
    const at = parseTime(event.type === "responder" && event.at ? event.at : event.time) || Date.now();
    const offsetCell = el("td", { text: offsetText(at), attrs: { title: new Date(at).toISOString() } });
    const tr = el("tr", { className: `src-${source}${emphasis ? " emphasis" : ""}`, attrs: { "data-kind": event.type === "responder" ? event.event : event.type } }, [
      offsetCell,
      el("td", { text: source }),
      el("td", { text: who }),
      el("td", { text: what }),
    ]);
    const row = { at, seq: state.seq++, tr, offsetCell };
    // Ordered by when it happened: a late entry (--at -2m) sits where it belongs.
    const rows = state.timelineRows;
    let index = rows.length;
    while (index > 0 && rows[index - 1].at > at) index -= 1;
    const body = byTestId("timeline");
    if (index === rows.length) body.append(tr);
    else body.insertBefore(tr, rows[index].tr);
    rows.splice(index, 0, row);
  }

  function setT0(ms, measured) {
    if (ms === null || (state.t0Measured && !measured)) return;
    if (state.t0 === ms) return;
    state.t0 = ms;
    state.t0Measured = state.t0Measured || measured;
    byTestId("t0").textContent = `${clock(ms)} UTC`;
    for (const row of state.timelineRows) row.offsetCell.textContent = offsetText(row.at);
    drawChart();
  }

  // ---------------------------------------------------------------- journal events

  function showInjectForRoom(event, fresh) {
    const list = byTestId("injects");
    const item = el("li", {}, [
      el("span", { className: "mono", text: `t0+${duration(Number(event.at_offset_s) || 0)}` }),
      el("strong", { text: event.name || "" }),
      el("span", { text: event.text || "" }),
    ]);
    list.prepend(item);
    part(list.parentElement, "none").hidden = true;
    if (fresh) {
      const banner = byTestId("inject-banner");
      part(banner, "text").textContent = event.text || "";
      banner.hidden = false;
    }
  }

  function onJournal(event, fresh) {
    addTimelineRow(event);
    switch (event.type) {
      case "phase":
        setPhase(event.phase);
        break;
      case "fault_injected":
        updateFault(event.fault, "injected");
        if (state.t0 === null) setT0(parseTime(event.in_effect_since || event.time), false);
        break;
      case "fault_inject_failed": updateFault(event.fault, "failed"); break;
      case "fault_reverting": updateFault(event.fault, "reverting"); break;
      case "fault_reverted": updateFault(event.fault, "reverted"); break;
      case "fault_revert_failed": updateFault(event.fault, "revert_failed"); break;
      case "condition": updateCondition(event.name, event.value, event.state); break;
      case "alert":
        state.alerts.set(`${event.source}/${event.name}`, { name: event.name, state: event.state, layer: event.layer || "", source: event.source });
        renderAlerts();
        break;
      case "escalation_due": {
        const banner = byTestId("escalation-banner");
        part(banner, "detail").textContent = event.detail || "";
        banner.hidden = false;
        break;
      }
      case "responder":
        if (event.event === "escalated" || event.event === "mitigated") byTestId("escalation-banner").hidden = true;
        break;
      case "checklist": applyChecklist(event); break;
      case "go_decision": applyDecision(event); break;
      case "inject_fired":
        applyInject(event.name, "fired", `shown at t0+${duration(Number(event.at_offset_s) || 0)}`);
        showInjectForRoom(event, fresh);
        break;
      case "inject_skipped": applyInject(event.name, "skipped", event.reason || ""); break;
      case "run_finished": finish(event); break;
      default: break;
    }
  }

  function setPhase(phase) {
    state.phase = phase;
    byTestId("run-phase").textContent = human(phase);
    state.awaitingGo = phase === "awaiting_go";
    if (state.capability === "facilitator") {
      if (state.awaitingGo && !state.goDecided) {
        part(byTestId("run-sheet"), "go-state").textContent = "The run is waiting for your decision.";
      }
      refreshGo();
    }
  }

  function finish(event) {
    state.finished = true;
    state.timeLeft = null;
    byTestId("time-left").textContent = "-";
    byTestId("escalation-banner").hidden = true;
    const result = byTestId("result");
    const status = part(result, "status");
    status.textContent = event.status || "";
    status.className = `status-${String(event.status || "").replace(/[^a-z]/g, "")}`;
    part(result, "detail").textContent = event.detail || "";
    result.hidden = false;
    disableActions();
    refreshGo();
  }

  // ---------------------------------------------------------------- stream messages

  function onSnapshot(snapshot) {
    if (snapshot.phase) setPhase(snapshot.phase);
    if (snapshot.time_left_s === null || snapshot.time_left_s === undefined || state.finished) {
      state.timeLeft = null;
      byTestId("time-left").textContent = "-";
    } else {
      state.timeLeft = { seconds: snapshot.time_left_s, at: performance.now() };
      tickTimeLeft();
    }
    for (const condition of snapshot.conditions || []) updateCondition(condition.name, condition.value, condition.state);
    for (const fault of snapshot.faults || []) updateFault(fault.name, fault.state);
    const sample = snapshot.sample;
    if (sample && typeof sample.t === "number") {
      pushPoint(state.series.sli, sample.t, sample.sli);
      for (const [name, value] of Object.entries(sample.steady || {})) {
        if (!state.series.steady[name]) state.series.steady[name] = [];
        pushPoint(state.series.steady[name], sample.t, value);
      }
      drawChart();
    }
    if (snapshot.live === false) state.live = false;
  }

  function pushPoint(series, t, value) {
    if (series.length && series[series.length - 1][0] >= t) return;
    series.push([t, value === undefined ? null : value]);
    if (series.length > MAX_CHART_POINTS) series.splice(0, series.length - MAX_CHART_POINTS);
  }

  function tickTimeLeft() {
    if (!state.timeLeft) return;
    const passed = (performance.now() - state.timeLeft.at) / 1000;
    byTestId("time-left").textContent = countdown(state.timeLeft.seconds - passed);
  }

  function onMeasured(measured) {
    byTestId("ttd").textContent = measured.ttd_s === null || measured.ttd_s === undefined
      ? "-"
      : `${duration(measured.ttd_s)}${measured.ttd_layer ? ` (${VIA_LABELS[measured.ttd_layer] || human(measured.ttd_layer)})` : ""}`;
    byTestId("ttm").textContent = measured.ttm_s === null || measured.ttm_s === undefined ? "-" : duration(measured.ttm_s);
    if (measured.t0) setT0(parseTime(measured.t0), true);
  }

  async function showReport(path, quietIfMissing = false) {
    if (state.reportShown) return;
    state.reportShown = true;
    try {
      const html = await api("GET", path);
      showReportHtml(typeof html === "string" ? html : "");
    } catch (failure) {
      state.reportShown = false;
      if (!(quietIfMissing && failure.status === 404)) fatalSoft(`The report could not be loaded: ${failure.message}`);
    }
  }

  /**
   * The report in a sandboxed iframe (no scripts; same origin only so this
   * script can style it). A srcdoc document inherits this page's CSP, which
   * forbids inline <style>: the report's stylesheet is lifted out of the text
   * and adopted as a constructed stylesheet instead, which the CSP allows.
   */
  function showReportHtml(html) {
    const section = byTestId("debrief");
    const frame = part(section, "frame");
    let css = "";
    const withoutStyle = html.replace(/<style[^>]*>([\s\S]*?)<\/style>/gi, (_, text) => {
      css += text;
      return "";
    });
    frame.addEventListener("load", () => {
      const view = frame.contentWindow;
      const doc = frame.contentDocument;
      if (!view || !doc || !css) return;
      try {
        const sheet = new view.CSSStyleSheet();
        sheet.replaceSync(css);
        doc.adoptedStyleSheets = [sheet];
      } catch (error) {
        // Unstyled but readable.
      }
    }, { once: true });
    frame.srcdoc = withoutStyle;
    section.hidden = false;
  }

  function fatalSoft(message) {
    const box = byTestId("fatal");
    box.textContent = message;
    box.hidden = false;
  }

  // ---------------------------------------------------------------- the chart

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  /** Every k-th point (and the last), so at most about `limit` remain; gaps (null) are kept. */
  function thin(points, limit) {
    if (points.length <= limit) return points;
    const step = Math.ceil(points.length / limit);
    const kept = points.filter((point, index) => index % step === 0 || point[1] === null);
    if (kept[kept.length - 1] !== points[points.length - 1]) kept.push(points[points.length - 1]);
    return kept;
  }

  function drawChart() {
    const box = byTestId("chart");
    if (!box || !state.view) return;
    const width = 640;
    const height = 240;
    const left = 52;
    const right = 12;
    const top = 12;
    const bottom = 30;
    const lines = [];
    const mitigation = state.view.mitigation;
    if (state.series.sli.length || mitigation) lines.push({ name: mitigation ? `SLI: ${mitigation.sli}` : "SLI", points: state.series.sli });
    for (const [name, points] of Object.entries(state.series.steady)) lines.push({ name: `steady state: ${name}`, points });

    // A long gameday has thousands of samples; a few hundred per line draw the same picture.
    for (const line of lines) line.points = thin(line.points, MAX_DRAWN_POINTS);
    const all = lines.flatMap((line) => line.points).filter((point) => point[1] !== null && Number.isFinite(point[1]));
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "SLI and steady-state samples over time" });
    clear(box);
    if (!all.length) {
      chart.append(svg("text", { x: left, y: height / 2, class: "label" }, "no samples yet"));
      box.append(chart);
      return;
    }
    let [tMin, tMax, vMin, vMax] = [Infinity, -Infinity, Infinity, -Infinity];
    for (const [t, v] of all) {
      tMin = Math.min(tMin, t);
      tMax = Math.max(tMax, t);
      vMin = Math.min(vMin, v);
      vMax = Math.max(vMax, v);
    }
    if (tMax - tMin < 10) tMax = tMin + 10;
    if (mitigation && Number.isFinite(mitigation.objective)) {
      vMin = Math.min(vMin, mitigation.objective);
      vMax = Math.max(vMax, mitigation.objective);
    }
    if (vMax === vMin) { vMax += Math.abs(vMax) * 0.1 || 1; vMin -= Math.abs(vMin) * 0.1 || 0; }
    const pad = (vMax - vMin) * 0.08;
    vMax += pad;
    vMin = vMin >= 0 && vMin - pad < 0 ? 0 : vMin - pad;
    const x = (t) => left + ((t - tMin) / (tMax - tMin)) * (width - left - right);
    const y = (v) => top + (1 - (v - vMin) / (vMax - vMin)) * (height - top - bottom);

    for (let i = 0; i <= 4; i += 1) {
      const v = vMin + ((vMax - vMin) * i) / 4;
      chart.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }));
      chart.append(svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", class: "label" }, number(v)));
    }
    for (let i = 0; i <= 4; i += 1) {
      const t = tMin + ((tMax - tMin) * i) / 4;
      const label = state.t0 === null ? clock(t * 1000) : offsetText(t * 1000);
      chart.append(svg("text", { x: x(t), y: height - 10, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle", class: "label" }, label));
    }
    chart.append(svg("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "axis" }));
    chart.append(svg("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "axis" }));
    if (state.t0 !== null && state.t0 / 1000 >= tMin && state.t0 / 1000 <= tMax) {
      const tx = x(state.t0 / 1000);
      chart.append(svg("line", { x1: tx, x2: tx, y1: top, y2: height - bottom, class: "t0" }));
      chart.append(svg("text", { x: tx + 3, y: top + 10, class: "label" }, "t0"));
    }
    if (mitigation && Number.isFinite(mitigation.objective)) {
      chart.append(svg("line", { x1: left, x2: width - right, y1: y(mitigation.objective), y2: y(mitigation.objective), class: "objective" }));
    }
    lines.forEach((line, index) => {
      let d = "";
      let pen = false;
      for (const [t, v] of line.points) {
        if (v === null || !Number.isFinite(v)) { pen = false; continue; } // a gap where there was no data
        d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
        pen = true;
      }
      if (d) chart.append(svg("path", { d, class: `series s${index % 5}` }));
    });
    box.append(chart);

    const legend = el("ul", { className: "legend" });
    lines.forEach((line, index) => legend.append(el("li", {}, [el("span", { className: `swatch k-s${index % 5}` }), document.createTextNode(line.name)])));
    if (mitigation && Number.isFinite(mitigation.objective)) {
      legend.append(el("li", {}, [el("span", { className: "swatch k-objective" }), document.createTextNode(`objective ${mitigation.comparator} ${number(mitigation.objective)}`)]));
    }
    box.append(legend);
  }

  // ---------------------------------------------------------------- the stream (SSE over fetch)

  /** Feeds text in, calls onMessage({event, id, data}) per complete message (the SSE format). */
  function sseParser(onMessage) {
    let buffer = "";
    let message = { event: "", id: null, data: [] };
    return (chunk) => {
      buffer += chunk;
      let newline;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        const width = buffer.startsWith("\r\n", newline) ? 2 : 1;
        buffer = buffer.slice(newline + width);
        if (line === "") {
          if (message.data.length) onMessage({ event: message.event || "message", id: message.id, data: message.data.join("\n") });
          message = { event: "", id: null, data: [] };
          continue;
        }
        if (line.startsWith(":")) continue; // a comment: the server's keep-alive ping
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") message.event = value;
        else if (field === "data") message.data.push(value);
        else if (field === "id") message.id = value;
      }
    };
  }

  let seriesSeen = false;

  function onMessage(message) {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    switch (message.event) {
      case "journal": {
        const id = Number(message.id);
        if (Number.isFinite(id) && id <= state.lastId) return; // replayed after a reconnect: seen
        if (Number.isFinite(id)) state.lastId = id;
        onJournal(data, seriesSeen);
        break;
      }
      case "series":
        state.series = { sli: (data.sli || []).slice(-MAX_CHART_POINTS), steady: {} };
        for (const [name, points] of Object.entries(data.steady || {})) state.series.steady[name] = points.slice(-MAX_CHART_POINTS);
        seriesSeen = true;
        drawChart();
        // A page that joins after the run (the server lingers) missed the `report` message.
        if (state.finished && !state.reportShown) showReport("/api/report", true);
        break;
      case "snapshot": onSnapshot(data); break;
      case "measured": onMeasured(data); break;
      case "report": {
        // Only a path on this server: the token goes with the request, so never to another origin.
        const url = data && typeof data.url === "string" ? data.url : "";
        showReport(/^\/api\/[\w/.-]*$/.test(url) && !url.includes("..") ? url : "/api/report");
        break;
      }
      case "bye":
        state.byeSeen = true;
        document.body.setAttribute("data-stream", "bye");
        break;
      default: break;
    }
  }

  async function streamOnce() {
    const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
    if (state.lastId >= 0) headers["Last-Event-ID"] = String(state.lastId);
    const controller = new AbortController();
    state.streamAbort = controller;
    const response = await fetch("/api/stream", { headers, cache: "no-store", credentials: "omit", signal: controller.signal });
    if (response.status === 401) return "unauthorized";
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    setConnection("live", "live");
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    const feed = sseParser(onMessage);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      feed(decoder.decode(value, { stream: true }));
    }
    return "ended";
  }

  async function follow() {
    let wait = RETRY_FIRST_MS;
    for (;;) {
      let outcome;
      try {
        seriesSeen = false;
        outcome = await streamOnce();
        wait = RETRY_FIRST_MS;
      } catch (error) {
        outcome = "error";
      }
      if (outcome === "unauthorized") {
        fatal("This link's token is not valid (or the run it belonged to has ended).");
        return;
      }
      if (state.byeSeen || (state.finished && outcome === "error")) {
        setConnection("closed", "server stopped");
        byTestId("server-gone").hidden = false;
        disableActions();
        return;
      }
      setConnection("retry", "reconnecting…");
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, RETRY_MAX_MS);
    }
  }

  // ---------------------------------------------------------------- serve mode: past runs

  async function showRuns() {
    const section = byTestId("runs");
    section.hidden = false;
    byTestId("run-title").textContent = "Past runs";
    byTestId("run-phase").textContent = "-";
    setConnection("idle", "browsing");
    const body = byTestId("runs-list");
    clear(body);
    let rows;
    try {
      rows = await api("GET", "/api/runs");
    } catch (failure) {
      part(section, "error").textContent = failure.message;
      return;
    }
    const list = Array.isArray(rows) ? rows : (rows && rows.runs) || [];
    if (!list.length) {
      body.append(el("tr", {}, [el("td", { text: "No runs yet.", attrs: { colspan: 7 } })]));
      return;
    }
    for (const run of list) {
      const button = el("button", { className: "quiet", text: "Report", attrs: { type: "button" } });
      button.addEventListener("click", async () => {
        part(section, "error").textContent = "";
        try {
          const html = await api("GET", `/api/runs/${encodeURIComponent(run.run_id)}/report`);
          state.reportShown = true;
          showReportHtml(typeof html === "string" ? html : "");
          byTestId("debrief").scrollIntoView();
        } catch (failure) {
          part(section, "error").textContent = failure.message;
        }
      });
      const score = run.score === null || run.score === undefined ? "-" : `${Number(run.score).toFixed(1)}${run.grade ? ` (${run.grade})` : ""}`;
      body.append(el("tr", { attrs: { "data-run": run.run_id } }, [
        el("td", { className: "mono", text: String(run.started || "").replace("T", " ").slice(0, 19) }),
        el("td", { text: run.scenario || run.title || run.run_id }),
        el("td", {}, [stateBadge(run.status)]),
        el("td", { text: duration(run.ttd_seconds ?? run.ttd_s ?? null) }),
        el("td", { text: duration(run.ttm_seconds ?? run.ttm_s ?? null) }),
        el("td", { text: score }),
        el("td", {}, [button]),
      ]));
    }
  }

  // ---------------------------------------------------------------- start

  async function start() {
    byTestId("inject-banner").querySelector('[data-part="dismiss"]').addEventListener("click", () => {
      byTestId("inject-banner").hidden = true;
    });
    state.token = takeToken();
    if (!state.token) {
      fatal("This page needs the link chaosrunner printed (it ends in #token=...). Open that link.");
      return;
    }
    let view;
    try {
      view = await api("GET", "/api/run");
    } catch (failure) {
      if (failure.status === 401) {
        fatal("This link's token is not valid (or the run it belonged to has ended).");
      } else if (failure.status === 404) {
        fatal(`No live run here: ${failure.message}`);
      } else {
        fatal(`The run's server did not answer: ${failure.message}`);
      }
      return;
    }
    if (view && view.serve === true) {
      await showRuns(); // `chaosrunner serve`: no live run, the past ones
      return;
    }
    state.view = view;
    state.capability = ["facilitator", "team", "observer"].includes(view.capability) ? view.capability : "observer";
    document.body.setAttribute("data-capability", state.capability);
    byTestId("live").hidden = false;
    setUpIdentity();
    setUpActions();
    renderView(view);
    setInterval(tickTimeLeft, 1000);
    setConnection("retry", "connecting…");
    follow();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
