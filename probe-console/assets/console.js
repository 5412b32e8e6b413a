// probe console: login, a banner while a backend is down, apps, services, nodes with live metrics (and their breakers in the clients),
// the latency chart and the audit log;
// a service's traffic rule is the panel of rules.js, opened from a service link; a node's request
// limits the panel of limits.js, opened from its Limits button; a service's caller policy the panel
// of callers.js, opened from a node's Callers button. Apps show whether they have a credential
// (never a secret: those are issued by the CLI).
// Plain DOM, no framework; every text from the API goes in with textContent, never as HTML.
'use strict';

(() => {
  const POLL_MS = 2000;
  const state = {
    role: null, csrf: null, env: 'dev', app: null, chartNode: null, rules: null,
    source: null, pollTimer: null, busy: false,
  };
  const $ = (id) => document.getElementById(id);

  // --- helpers ------------------------------------------------------------------------------------

  // Control and bidirectional characters in text probe did not write (registry data, audit
  // entries) are shown as \u{..} escapes, so they cannot reorder or hide what an operator reads.
  const UNSAFE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/g;
  function visible(text) {
    return String(text ?? '').replace(UNSAFE, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
  }

  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === 'dataset') Object.assign(node.dataset, value);
      else if (key === 'className') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, key === 'title' ? visible(value) : value);
    }
    for (const child of children) node.append(child instanceof Node ? child : visible(child));
    return node;
  }

  class NotLoggedIn extends Error {}

  // What the limits and callers panels share: the section `${name}-section`, its status line
  // `${name}-status`, changes run from its buttons (a refused document's problems listed by
  // `hooks.showProblems(problems, err)`, other errors shown), the nodes and audit log read again
  // after a change, and the buttons only admins may use. `hooks.load()` reads the panel's data.
  function changePanel(name, hooks) {
    const section = $(`${name}-section`);
    function status(kind, text) {
      $(`${name}-status`).dataset.state = kind;
      $(`${name}-status`).textContent = visible(text);
    }
    async function run(button, action) {
      button.disabled = true;
      try {
        await action();
      } catch (err) {
        if (err.status === 422 && err.data && err.data.problems) {
          hooks.showProblems(err.data.problems, err);
          status('problems', err.message);
        } else {
          status('error', err.message);
          showError(err);
        }
      } finally {
        button.disabled = !isAdmin();
      }
    }
    // Shows what a change (`what`: applied, cleared) did, and reads everything it touched again.
    function done(answer, what) {
      hooks.showProblems([]);
      const warning = answer.audit_warning;
      status('applied', `${what} on ${answer.changes.length} node(s): ${answer.summary}${warning ? `; ${warning}` : ''}`);
      if (warning) showError(new Error(`${name}: ${warning}`));
      section.dataset.applied = answer.summary;
      return Promise.all([hooks.load(), refreshNodes(), refreshAudit()]);
    }
    // Shows the section, fresh: no status, no problems, the data read.
    function show() {
      delete section.dataset.applied;
      hooks.showProblems([]);
      status('', '');
      section.hidden = false;
      for (const control of section.querySelectorAll('[data-admin-only]')) control.disabled = !isAdmin();
      hooks.load().catch(showError);
    }
    return { status, run, done, show, hide: () => { section.hidden = true; } };
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    const response = await fetch(`/api${path}`, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { /* no JSON body */ }
    if (response.status === 401 && path !== '/login') {
      showLogin();
      throw new NotLoggedIn((data && data.error) || 'not logged in');
    }
    if (!response.ok) {
      const err = new Error((data && data.error) || `${method} /api${path}: HTTP ${response.status}`);
      Object.assign(err, { status: response.status, data });
      throw err;
    }
    return data;
  }

  let errorTimer = null;
  function showError(err) {
    if (err instanceof NotLoggedIn) return;
    $('error-text').textContent = err && err.message ? err.message : String(err);
    $('error').hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => { $('error').hidden = true; }, 10000);
  }

  const nodePath = (node) => `/nodes/${encodeURIComponent(node)}`;
  const fixed = (v, digits) => (typeof v === 'number' ? v.toFixed(digits) : '–');
  const when = (ms) => (ms ? new Date(ms).toLocaleString() : '–');
  // Today's times as HH:MM:SS, older ones as YYYY-MM-DD HH:MM.
  function short(ms) {
    if (!ms) return '–';
    const d = new Date(ms);
    const two = (n) => String(n).padStart(2, '0');
    const time = `${two(d.getHours())}:${two(d.getMinutes())}`;
    if (d.toDateString() === new Date().toDateString()) return `${time}:${two(d.getSeconds())}`;
    return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())} ${time}`;
  }
  const isAdmin = () => state.role === 'admin';

  // --- login --------------------------------------------------------------------------------------

  function showLogin() {
    stopLive();
    window.ProbeRules.close();
    window.ProbeLimits.close();
    window.ProbeCallers.close();
    state.role = null;
    state.csrf = null;
    $('main-view').hidden = true;
    $('logout').hidden = true;
    $('env-badge').hidden = true;
    $('whoami').textContent = '';
    $('backends-banner').hidden = true;
    $('login-view').hidden = false;
    $('login-token').focus();
  }

  function showMain(who) {
    state.role = who.role;
    state.csrf = who.csrf_token || null;
    $('whoami').textContent = `${who.actor} (${who.role})`;
    $('whoami').dataset.role = who.role;
    $('env-badge').textContent = `console env: ${who.env}`;
    $('env-badge').hidden = false;
    $('logout').hidden = false;
    $('login-view').hidden = true;
    $('main-view').hidden = false;
    for (const node of document.querySelectorAll('[data-admin-only]')) node.hidden = !isAdmin();
    $('nodes-table').tBodies[0].replaceChildren(); // rows hold the previous role's buttons
    readHash(who.env);
    refreshAll();
    startLive();
    if (state.app && state.rules) window.ProbeRules.open(state.app, state.rules);
  }

  async function login(event) {
    event.preventDefault();
    $('login-error').hidden = true;
    try {
      const who = await api('POST', '/login', { token: $('login-token').value, user: $('login-user').value });
      $('login-token').value = '';
      showMain(who);
    } catch (err) {
      $('login-error').textContent = err.message;
      $('login-error').hidden = false;
    }
  }

  async function logout() {
    try { await api('POST', '/logout'); } catch (err) { showError(err); }
    showLogin();
  }

  // --- selection, kept in the URL hash so a reload keeps it ---------------------------------------

  function readHash(defaultEnv) {
    const params = new URLSearchParams(location.hash.slice(1));
    state.env = params.get('env') || state.env || defaultEnv;
    if (!['dev', 'prod'].includes(state.env)) state.env = defaultEnv;
    state.app = params.get('app') || null;
    state.chartNode = params.get('node') || null;
    state.rules = state.app ? params.get('rules') || null : null;
    $('env-select').value = state.env;
  }

  function writeHash() {
    const params = new URLSearchParams({ env: state.env });
    if (state.app) params.set('app', state.app);
    if (state.chartNode) params.set('node', state.chartNode);
    if (state.rules) params.set('rules', state.rules);
    history.replaceState(null, '', `#${params}`);
  }

  function selectApp(appkey) {
    if (state.app !== appkey) {
      state.chartNode = null;
      state.rules = null;
      window.ProbeRules.close();
      window.ProbeLimits.close();
      window.ProbeCallers.close();
    }
    state.app = appkey;
    writeHash();
    $('nodes-table').tBodies[0].replaceChildren();
    refreshNodes().catch(showError);
    refreshChart().catch(showError);
    refreshServices().catch(showError);
    startLive();
  }

  // --- tables -------------------------------------------------------------------------------------

  // Shows the app rows whose appkey holds the filter text (the chosen app always shows).
  function applyFilter() {
    const text = $('app-filter').value.trim().toLowerCase();
    for (const row of document.querySelectorAll('#services-table tbody tr, #apps-table tbody tr')) {
      const appkey = row.dataset.appkey || '';
      row.hidden = Boolean(text) && !appkey.toLowerCase().includes(text) && appkey !== state.app;
    }
  }

  // Opens the traffic-rule panel of a service (choosing its app first).
  function openRules(appkey, service) {
    if (state.app !== appkey) selectApp(appkey);
    state.rules = service;
    writeHash();
    window.ProbeRules.open(appkey, service);
  }

  const serviceLink = (appkey, service, label) => el('button', { type: 'button', className: 'svc svc-link',
    title: `traffic rule of ${service}`, dataset: { app: appkey, service }, onclick: () => openRules(appkey, service) }, label);

  const appLink = (appkey) => el('button', { type: 'button', className: 'app-link', dataset: { app: appkey },
    onclick: () => selectApp(appkey) }, appkey);

  // Whether the app has a credential: when it was issued and whether the one before it is still
  // valid; never the secret (the API has none to give).
  function credentialCell(a) {
    const c = a.credential || { state: 'unknown' };
    const text = c.state === 'issued' ? `issued ${short(c.issued_at_ms)}` : c.state;
    const title = c.state === 'issued'
      ? `issued ${when(c.issued_at_ms)}${c.previous_valid ? '; the credential before it is still valid until `probe apps credential retire`' : ''}`
      : c.state === 'none' ? 'no credential: issue one with `probe apps credential rotate APPKEY`' : c.problem || '';
    return el('td', { className: 'credential', title, dataset: { role: 'credential', state: c.state, previous: String(Boolean(c.previous_valid)) } },
      text, ...(c.previous_valid ? [el('span', { className: 'tag' }, '+ previous')] : []));
  }

  async function refreshApps() {
    const apps = await api('GET', '/apps');
    $('apps-table').tBodies[0].replaceChildren(...apps.map((a) =>
      el('tr', { dataset: { appkey: a.appkey } }, el('td', {}, appLink(a.appkey)),
        el('td', { className: 'wrap' }, a.description), el('td', {}, a.owner), credentialCell(a))));
    applyFilter();
  }

  async function refreshServices() {
    const data = await api('GET', `/services?env=${encodeURIComponent(state.env)}`);
    $('services-empty').hidden = data.apps.length > 0;
    $('services-table').tBodies[0].replaceChildren(...data.apps.map((a) => el('tr',
      { dataset: { appkey: a.appkey }, className: a.appkey === state.app ? 'selected' : '' },
      el('td', {}, appLink(a.appkey), a.registered ? '' : el('span', { className: 'tag' }, 'not registered')),
      el('td', { className: 'wrap' }, ...a.services.map((s) =>
        serviceLink(a.appkey, s.service, `${s.service} ${s.in_rotation}/${s.nodes}`))),
      el('td', { className: 'num' }, a.nodes))));
    applyFilter();
  }

  function validBadge(n) {
    if (!n.running) return el('span', { className: 'badge down', dataset: { role: 'valid' } }, n.valid ? 'on · down' : 'off · down');
    return el('span', { className: `badge ${n.valid ? 'on' : 'off'}`, dataset: { role: 'valid' } }, n.valid ? 'on' : 'off');
  }

  function actions(n) {
    const disabled = !isAdmin();
    const weight = el('input', { type: 'number', min: '0', max: '1000000', step: '1', value: String(n.weight),
      'aria-label': `weight of ${n.id}`, dataset: { role: 'weight-input' } });
    if (disabled) weight.disabled = true;
    const button = (action, label, run) => {
      const b = el('button', { type: 'button', dataset: { action } , onclick: () => run(b) }, label);
      if (disabled && !['chart', 'limits', 'callers'].includes(action)) b.disabled = true;
      return b;
    };
    return el('td', { className: 'actions' },
      n.valid ? button('disable', 'Disable', (b) => change(b, n.node, 'disable'))
              : button('enable', 'Enable', (b) => change(b, n.node, 'enable')),
      weight,
      button('weight', 'Set weight', (b) => change(b, n.node, 'weight', { weight: Number(weight.value) })),
      button('chart', 'Chart', () => { state.chartNode = n.node; writeHash(); refreshChart().catch(showError); markChart(); }),
      button('limits', 'Limits', () => window.ProbeLimits.open(state.app, n)),
      button('callers', 'Callers', () => window.ProbeCallers.open(state.app, n.service)));
  }

  // Calls the node's request limits refused in its latest window, then those its caller policy
  // refused (when it did), by reason in the title.
  function refusedCell(n) {
    const m = n.metrics;
    const listed = (byReason) => Object.entries(byReason || {}).map(([r, c]) => `${r} ${c}`).join(', ');
    const callers = n.refused_callers || 0;
    const title = [m && listed(m.refused_by_reason), callers ? `callers: ${listed(m.refused_callers_by_reason)}` : '']
      .filter(Boolean).join('; ');
    const text = !m ? '–' : callers ? `${n.refused ?? 0} + ${callers} callers` : String(n.refused ?? 0);
    return el('td', { className: 'num', dataset: { role: 'refused' }, title }, text);
  }

  function nodeRow(n) {
    const m = n.metrics;
    const startedMs = n.started_at ? n.started_at * 1000 : 0;
    return el('tr', { dataset: { node: n.node, valid: String(n.valid), running: String(n.running), weight: String(n.weight) } },
      // The address clients dial; a note when the node data disagrees with its name, or its
      // weight is above what the console sets.
      el('td', {}, serviceLink(state.app, n.service, n.service)),
      el('td', {}, n.host, ...((n.notes || []).length ? [' ', el('span', { className: 'badge note',
        title: n.notes.join('\n'), dataset: { role: 'notes' } }, 'note')] : [])),
      el('td', { className: 'num' }, n.port),
      el('td', { className: 'num', dataset: { role: 'weight' } }, n.weight), el('td', {}, validBadge(n)),
      el('td', {}, n.version || '–'), el('td', { title: when(startedMs) }, short(startedMs)),
      el('td', { className: 'num', dataset: { role: 'qps' } }, m ? fixed(m.qps, 1) : '–'),
      el('td', { className: 'num', dataset: { role: 'errors' } }, m ? `${m.errors} (${fixed(m.error_rate * 100, 1)}%)` : '–'),
      refusedCell(n),
      el('td', { className: 'num', dataset: { role: 'p99' } }, m ? fixed(m.p99_ms, 2) : '–'),
      breakerCell(n),
      limitsCell(n),
      actions(n));
  }

  // Where the node's circuit breaker stands in its service's clients: `closed`, `open in 2 of 5
  // clients`, or – when no client reports.
  function breakerCell(n) {
    const b = n.breaker || { open: 0, half_open: 0, clients: 0 };
    const state = !b.clients ? 'unknown' : b.open ? 'open' : b.half_open ? 'half_open' : 'closed';
    return el('td', { className: 'breaker', dataset: { role: 'breaker', state },
      title: `open in ${b.open}, half-open in ${b.half_open} of ${b.clients} client(s) reporting` }, n.breaker_summary || '–');
  }

  // The node's limits on one line, and why its provider refused them (it keeps the ones before).
  function limitsCell(n) {
    const shown = n.limits || n.limits_summary !== 'none' ? n.limits_summary : '–';
    const problems = String(n.limits_problem || '').split('\n').filter((l) => l.trim());
    const refused = problems.length ? [' ', el('span', { className: 'limits-problem', dataset: { role: 'limits-problem' },
      title: problems.join('\n') }, `refused by provider: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`)] : [];
    return el('td', { className: 'limits', dataset: { role: 'limits' } }, shown, ...refused);
  }

  // Per service, the backup requests (hedges) its clients sent and the calls their own QPS limit
  // refused, so far; only services where either is not zero.
  function renderClients(list) {
    const lines = list.filter((c) => c.hedges || c.limited).map((c) => {
      const parts = [];
      if (c.hedges) parts.push(`${c.hedges} backup requests (hedges)`);
      if (c.limited) parts.push(`${c.limited} calls refused by their own QPS limit`);
      return el('li', { dataset: { service: c.service, hedges: String(c.hedges), limited: String(c.limited) } },
        el('span', { className: 'svc' }, `${c.service}:`), `${c.clients} client(s) reporting, ${parts.join(', ')} so far`);
    });
    $('nodes-clients').hidden = lines.length === 0;
    $('nodes-clients').replaceChildren(...lines);
  }

  function markChart() {
    for (const row of $('nodes-table').tBodies[0].rows) row.classList.toggle('selected', row.dataset.node === state.chartNode);
  }

  async function refreshNodes() {
    const body = $('nodes-table').tBodies[0];
    $('nodes-app').textContent = state.app ? `${state.app} (${state.env})` : '—';
    $('nodes-hint').hidden = Boolean(state.app);
    if (!state.app) { body.replaceChildren(); renderClients([]); return; }
    const app = state.app;
    const data = await api('GET', `/apps/${encodeURIComponent(app)}/nodes?env=${encodeURIComponent(state.env)}`);
    if (app !== state.app) return;
    // A row whose weight box is being edited keeps that box; everything else in it is rebuilt.
    const focused = document.activeElement;
    const editing = focused && focused.matches('input[data-role="weight-input"]') ? focused.closest('tr') : null;
    const existing = new Map([...body.rows].map((row) => [row.dataset.node, row]));
    const rows = data.nodes.map((n) => {
      // An unchanged node keeps its row, so a click in progress is not lost to a rebuild.
      const sig = JSON.stringify(n);
      const old = existing.get(n.node);
      if (old && old.dataset.sig === sig) return old;
      const row = nodeRow(n);
      row.dataset.sig = sig;
      if (!editing || editing.dataset.node !== n.node) return row;
      Object.assign(editing.dataset, row.dataset);
      const [freshActions, oldActions] = [row.cells[row.cells.length - 1], editing.cells[editing.cells.length - 1]];
      const count = row.cells.length - 1;
      for (let i = 0; i < count; i++) editing.replaceChild(row.cells[0], editing.cells[i]);
      oldActions.replaceChild(freshActions.firstChild, oldActions.firstChild);
      return editing;
    });
    for (const row of [...body.rows]) if (!rows.includes(row)) row.remove();
    rows.forEach((row, i) => { if (body.rows[i] !== row) body.insertBefore(row, body.rows[i] || null); });
    renderUnusable(data.unusable || []);
    renderClients(data.clients || []);
    markChart();
  }

  // Registry nodes probe cannot use, with the reason; text only, never HTML.
  function renderUnusable(list) {
    $('unusable').hidden = list.length === 0;
    $('unusable-table').tBodies[0].replaceChildren(...list.map((u) =>
      el('tr', { dataset: { child: u.child, reason: u.reason_kind } },
        el('td', { className: 'mono' }, u.child), el('td', {}, u.reason), el('td', { className: 'mono' }, u.data))));
  }

  async function refreshChart() {
    const canvas = $('latency-chart');
    $('chart-node').textContent = state.chartNode || '';
    $('chart-hint').hidden = Boolean(state.chartNode);
    if (!state.chartNode) { window.ProbeChart.draw(canvas, []); canvas.dataset.windows = '0'; return; }
    const data = await api('GET', `${nodePath(state.chartNode)}/history`);
    window.ProbeChart.draw(canvas, data.windows);
    canvas.dataset.windows = String(data.windows.length);
  }

  async function refreshAudit() {
    const entries = await api('GET', '/audit?limit=50');
    $('audit-table').tBodies[0].replaceChildren(...entries.map((e) => el('tr', { dataset: { auditId: String(e.id), action: e.action } },
      el('td', { title: when(e.at_ms) }, short(e.at_ms)), el('td', {}, e.actor), el('td', {}, e.action),
      el('td', { className: 'mono' }, e.target), el('td', { className: 'mono' }, e.before || '–'),
      el('td', { className: 'mono' }, e.after || '–'))));
  }

  // A banner while ZooKeeper, Redis or MySQL is down: each line names the backend, its address and
  // the setting that configures it (viewers get no more than that of what the backend said).
  let healthBusy = false;
  async function refreshHealth() {
    if (healthBusy || !state.role) return;
    healthBusy = true;
    try {
      const health = await api('GET', '/health');
      const down = health.backends.filter((b) => !b.ok);
      $('backends-down').replaceChildren(...down.map((b) =>
        el('li', { dataset: { backend: b.backend, setting: b.setting } }, b.error)));
      $('backends-banner').hidden = down.length === 0;
    } catch (err) {
      showError(err);
    } finally {
      healthBusy = false;
    }
  }

  // Every tick refreshes the chosen app's nodes, the chart and the audit log; the app lists (one
  // registry read per app) and the backends' health every fifth tick, and at once when the page
  // asks for everything or a request fails on the server's side.
  let ticks = 0;
  async function refreshAll(event) {
    if (state.busy || !state.role) return;
    state.busy = true;
    const lists = !event || ticks++ % 5 === 0;
    if (lists) refreshHealth();
    try {
      await Promise.all([refreshNodes(), refreshChart(), refreshAudit(),
        ...(lists ? [refreshServices(), refreshApps()] : [])]);
    } catch (err) {
      if (err.status >= 500 && !lists) refreshHealth();
      showError(err);
    } finally {
      state.busy = false;
    }
  }

  // --- actions ------------------------------------------------------------------------------------

  async function change(button, node, action, body) {
    button.disabled = true;
    try {
      const answer = await api('POST', `${nodePath(node)}/${action}`, body === undefined ? {} : body);
      await Promise.all([refreshNodes(), refreshServices()]);
      // The change was applied; a failed audit is a warning beside it.
      if (answer && answer.audit_warning) showError(new Error(`${action}: ${answer.audit_warning}`));
      else await refreshAudit();
    } catch (err) {
      showError(err);
    } finally {
      button.disabled = !isAdmin();
    }
  }

  async function addApp(event) {
    event.preventDefault();
    const app = { appkey: $('app-appkey').value.trim(), description: $('app-description').value, owner: $('app-owner').value };
    try {
      const answer = await api('POST', '/apps', app);
      event.target.reset();
      await Promise.all([refreshApps(), refreshServices()]);
      if (answer && answer.audit_warning) showError(new Error(`add app: ${answer.audit_warning}`));
      else await refreshAudit();
    } catch (err) {
      showError(err);
    }
  }

  // --- live updates: server-sent events, else polling ---------------------------------------------

  function setLive(mode) {
    $('live-status').dataset.mode = mode;
    $('live-status').textContent = { sse: 'live', polling: 'polling every 2 s', off: 'offline' }[mode];
  }

  function stopLive() {
    if (state.source) { state.source.close(); state.source = null; }
    clearInterval(state.pollTimer);
    state.pollTimer = null;
    setLive('off');
  }

  function startPolling() {
    stopLive();
    state.pollTimer = setInterval(() => refreshAll('poll'), POLL_MS);
    setLive('polling');
  }

  function startLive() {
    stopLive();
    if (!state.role) return;
    if (!window.EventSource) { startPolling(); return; }
    const params = new URLSearchParams({ env: state.env });
    if (state.app) params.set('app', state.app);
    const source = new EventSource(`/api/events?${params}`);
    state.source = source;
    source.addEventListener('open', () => setLive('sse'));
    source.addEventListener('changed', () => { refreshNodes().catch(showError); refreshServices().catch(showError); });
    source.addEventListener('tick', refreshAll);
    source.addEventListener('error', () => {
      // EventSource retries by itself; once it gives up, poll (which also notices a logout).
      if (source.readyState === EventSource.CLOSED && state.source === source) startPolling();
    });
  }

  // --- start --------------------------------------------------------------------------------------

  document.addEventListener('DOMContentLoaded', async () => {
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    $('add-app-form').addEventListener('submit', addApp);
    $('error-close').addEventListener('click', () => { $('error').hidden = true; });
    $('app-filter').addEventListener('input', applyFilter);
    window.ProbeRules.setup({
      api, el, showError, isAdmin, short, when, visible, env: () => state.env,
      closed: () => { state.rules = null; writeHash(); },
    });
    window.ProbeLimits.setup({ api, el, visible, changePanel, env: () => state.env });
    window.ProbeCallers.setup({ api, el, visible, changePanel, env: () => state.env });
    $('env-select').addEventListener('change', () => {
      state.env = $('env-select').value;
      state.app = null;
      state.chartNode = null;
      state.rules = null;
      window.ProbeRules.close();
      window.ProbeLimits.close();
      window.ProbeCallers.close();
      writeHash();
      refreshAll();
      startLive();
    });
    try {
      showMain(await api('GET', '/whoami'));
    } catch (err) {
      if (!(err instanceof NotLoggedIn)) { showLogin(); showError(err); }
    }
  });
})();
