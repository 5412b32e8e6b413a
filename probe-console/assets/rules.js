// The traffic-rule panel of one service: its document in an editor; Validate (each problem at its
// line:column), Preview (each live node's share now and under the editor's text), Apply, the
// history with Rollback, and how many clients run the revision in force. While the panel is open
// it reads the rule every 2 s, so the clients line follows them. console.js opens it and lends its
// helpers; every text from the API goes in through el() (textContent), never as HTML.
'use strict';

window.ProbeRules = (() => {
  const POLL_MS = 2000;
  let ui = null; // helpers from console.js: api, el, showError, isAdmin, short, when, visible, env
  const rule = {
    appkey: null, service: null, env: null, timer: null, reading: false, asked: 0, shown: 0,
    base: null, // { version, text } of the document the editor was loaded with
    shares: null, // node id -> { now, new } of the last preview, until the text changes
  };
  const $ = (id) => document.getElementById(id);
  // `/rules/{appkey}/{service}[/action]?env=`, for the open service.
  const url = (action) => `/rules/${encodeURIComponent(rule.appkey)}/${encodeURIComponent(rule.service)}`
    + `${action ? `/${action}` : ''}?env=${encodeURIComponent(rule.env)}`;
  const percent = (share) => (typeof share === 'number' ? `${(share * 100).toFixed(1)}%` : '–');
  const pairs = (map) => Object.entries(map || {}).map(([k, v]) => `${k}=${v}`).join(', ') || '–';

  // `k=v, k2=v2` from an input, as an object.
  function parsePairs(text) {
    const out = {};
    for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
      const at = part.indexOf('=');
      if (at <= 0) throw new Error(`"${part}" is not key=value`);
      out[part.slice(0, at).trim()] = part.slice(at + 1).trim();
    }
    return out;
  }

  function status(state, ...text) {
    $('rules-status').dataset.state = state;
    $('rules-status').replaceChildren(...text.map((t) => (t instanceof Node ? t : ui.visible(t))));
  }

  // Puts the caret at line:column (1-based, in characters) of the editor.
  function caret(line, column) {
    const editor = $('rules-text');
    const lines = editor.value.split('\n');
    let offset = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    const chars = [...(lines[line - 1] || '')].slice(0, Math.max(column - 1, 0));
    offset += chars.join('').length;
    editor.focus();
    editor.setSelectionRange(offset, offset);
  }

  function clearShares() {
    rule.shares = null;
    delete $('rules-nodes').dataset.previewed;
  }

  function showProblems(problems) {
    $('rules-problems').replaceChildren(...(problems || []).map((p) => {
      const where = p.line ? `${p.line}:${p.column}` : '–';
      const item = ui.el('li', { dataset: { line: String(p.line ?? ''), column: String(p.column ?? ''), pointer: p.pointer ?? '' },
        title: 'show in the editor', onclick: () => { if (p.line) caret(p.line, p.column); } },
      ui.el('span', { className: 'loc' }, where), ' ',
      ...(p.pointer ? [ui.el('code', {}, p.pointer), ' '] : []), p.message);
      return item;
    }));
  }

  // --- the view: rule in force, nodes, clients, history -------------------------------------------

  function renderNodes(nodes) {
    $('rules-nodes').tBodies[0].replaceChildren(...nodes.map((n) => {
      const share = (rule.shares && rule.shares[n.id]) || {};
      return ui.el('tr', { dataset: { id: n.id, inRotation: String(n.in_rotation) } },
        ui.el('td', { className: 'mono' }, n.id), ui.el('td', {}, n.version || '–'), ui.el('td', {}, pairs(n.tags)),
        ui.el('td', { className: 'num' }, n.tier), ui.el('td', {}, n.in_rotation ? 'yes' : 'no'),
        ui.el('td', { className: 'num', dataset: { role: 'now' } }, percent(share.now)),
        ui.el('td', { className: 'num', dataset: { role: 'new' } }, percent(share.new)));
    }));
  }

  function renderClients(clients) {
    const line = $('rules-clients');
    const lagging = clients ? clients.not_current : [];
    if (!clients) line.textContent = 'client reports unavailable: the metrics store did not answer';
    else if (clients.revision === null) {
      line.textContent = `${clients.total} client(s) report in; the rule in force is not valid, so they keep their last valid rule`;
    } else line.textContent = `${clients.on_current} of ${clients.total} clients on revision ${clients.revision}`;
    Object.assign(line.dataset, clients
      ? { total: String(clients.total), onCurrent: String(clients.on_current), revision: String(clients.revision) } : {});
    $('rules-lagging').hidden = lagging.length === 0;
    $('rules-lagging').tBodies[0].replaceChildren(...lagging.map((c) => ui.el('tr', { dataset: { client: c.client } },
      ui.el('td', { className: 'mono' }, c.client), ui.el('td', { className: 'num' }, c.revision),
      ui.el('td', { title: ui.when(c.applied_at_ms) }, ui.short(c.applied_at_ms)),
      ui.el('td', {}, c.problem ? 'sees a bad document' : ''))));
  }

  function renderHistory(history) {
    $('rules-history').tBodies[0].replaceChildren(...[...history].reverse().map((r) => {
      const back = ui.el('button', { type: 'button', dataset: { action: 'rollback', revision: String(r.revision) },
        onclick: () => rollback(back, r.revision) }, `Roll back to ${r.revision}`);
      back.disabled = !ui.isAdmin() || r.revision === null;
      return ui.el('tr', { dataset: { revision: String(r.revision ?? ''), current: String(r.current) } },
        ui.el('td', { className: 'num' }, r.revision ?? '–'), ui.el('td', { className: 'num' }, r.version),
        ui.el('td', { className: 'wrap' }, r.summary), ui.el('td', {}, r.current ? 'in force' : back));
    }));
  }

  function render(data, reload) {
    const r = data.rule;
    const editor = $('rules-text');
    const edited = rule.base !== null && editor.value !== rule.base.text;
    if (reload || rule.base === null || !edited) {
      const fresh = r ? r.text : '';
      if (reload || fresh !== editor.value) {
        // A new document: the last preview and problems were about another one.
        editor.value = fresh;
        clearShares();
        showProblems(r && !r.valid ? r.problems : []);
      }
      rule.base = { version: r ? r.version : null, text: fresh };
    }
    const section = $('rules-section');
    section.dataset.revision = r ? String(r.revision ?? '') : '';
    section.dataset.version = r ? String(r.version) : '';
    $('rules-revision').textContent = !r ? 'no rule' : r.valid ? `revision ${r.revision}`
      : `store version ${r.version}: not a valid rule`;
    $('rules-summary').textContent = r ? r.summary : 'no rule: calls go to every node in rotation by weight';
    const stale = edited && (r ? r.version : null) !== rule.base.version;
    $('rules-stale').hidden = !stale;
    const unsafe = ui.visible(editor.value.replace(/\t/g, ' ')) !== editor.value.replace(/\t/g, ' ');
    $('rules-unsafe').hidden = !unsafe;
    renderNodes(data.nodes);
    renderClients(data.clients);
    renderHistory(data.history);
  }

  // Reads the rule and shows it; an answer older than one already shown is dropped.
  async function refresh(reload) {
    if (!rule.service || (rule.reading && !reload)) return;
    const asked = url();
    const seq = ++rule.asked;
    rule.reading = true;
    try {
      const data = await ui.api('GET', asked);
      if (asked === url() && seq > rule.shown) {
        rule.shown = seq;
        render(data, reload);
      }
    } finally {
      if (seq === rule.asked) rule.reading = false;
    }
  }

  // --- actions ------------------------------------------------------------------------------------

  async function run(button, action) {
    button.disabled = true;
    try { await action(); } catch (err) {
      if (err.status === 422 && err.data && err.data.problems) {
        showProblems(err.data.problems);
        status('problems', err.message);
      } else if (err.status === 409) {
        status('conflict', err.message, ' ', ui.el('button', { type: 'button', onclick: () => reload() }, 'Reload the rule'));
      } else {
        status('error', err.message);
        ui.showError(err);
      }
    } finally {
      button.disabled = button.dataset.adminOnly !== undefined && !ui.isAdmin();
    }
  }

  const text = () => $('rules-text').value;

  function validate() {
    return run($('rules-validate'), async () => {
      const answer = await ui.api('POST', url('validate'), { text: text() });
      showProblems(answer.problems);
      if (answer.ok) status('ok', `valid: ${answer.summary}`);
      else status('problems', `${answer.problems.length} problem(s); Apply would refuse it`);
    });
  }

  function preview() {
    return run($('rules-preview'), async () => {
      const body = { text: text(), tags: parsePairs($('rules-tags').value), headers: parsePairs($('rules-headers').value) };
      const answer = await ui.api('POST', url('preview'), body);
      rule.shares = Object.fromEntries(answer.nodes.map((n) => [n.id, { now: n.now, new: n.new }]));
      renderNodes(answer.nodes);
      showProblems(answer.problems);
      $('rules-nodes').dataset.previewed = 'true';
      status(answer.problems.length ? 'problems' : 'ok', `preview of ${answer.draws} calls per rule: ${answer.summary}`,
        ...(answer.problems.length ? ['; Apply would refuse it'] : []));
    });
  }

  function apply() {
    return run($('rules-apply'), async () => {
      const body = { text: text(), expected_version: rule.base ? rule.base.version : null };
      const answer = await ui.api('POST', url('apply'), body);
      showProblems([]);
      status('applied', `applied: revision ${answer.revision} (store version ${answer.version})`,
        ...[answer.audit_warning].filter(Boolean).map((w) => `; ${w}`));
      $('rules-section').dataset.applied = String(answer.revision);
      await refresh(true);
    });
  }

  function rollback(button, revision) {
    return run(button, async () => {
      const answer = await ui.api('POST', url('rollback'), { revision });
      const unknown = answer.unknown_versions.map((p) => `; ${p.message}`);
      status('applied', `rolled back: revision ${answer.revision} has revision ${revision}'s rule`, ...unknown,
        ...(answer.audit_warning ? [`; ${answer.audit_warning}`] : []));
      $('rules-section').dataset.applied = String(answer.revision);
      await refresh(true);
    });
  }

  function reload() {
    showProblems([]);
    status('', '');
    refresh(true).catch(ui.showError);
  }

  // --- open and close -----------------------------------------------------------------------------

  function open(appkey, service) {
    const same = rule.appkey === appkey && rule.service === service && rule.env === ui.env();
    if (!same) {
      Object.assign(rule, { appkey, service, env: ui.env(), base: null });
      $('rules-text').value = '';
      showProblems([]);
      status('', '');
      $('rules-target').textContent = `${appkey}/${service}`;
      clearShares();
    }
    $('rules-section').hidden = false;
    for (const button of $('rules-section').querySelectorAll('[data-admin-only]')) button.disabled = !ui.isAdmin();
    clearInterval(rule.timer);
    rule.timer = setInterval(() => refresh(false).catch(ui.showError), POLL_MS);
    refresh(!same).catch(ui.showError);
  }

  function close() {
    clearInterval(rule.timer);
    Object.assign(rule, { appkey: null, service: null, timer: null, base: null, shares: null });
    $('rules-section').hidden = true;
  }

  function setup(helpers) {
    ui = helpers;
    $('rules-validate').addEventListener('click', validate);
    $('rules-preview').addEventListener('click', preview);
    $('rules-apply').addEventListener('click', apply);
    $('rules-reload').addEventListener('click', reload);
    $('rules-close').addEventListener('click', () => { close(); ui.closed(); });
    $('rules-text').addEventListener('input', clearShares);
  }

  return { setup, open, close, current: () => rule.service };
})();
