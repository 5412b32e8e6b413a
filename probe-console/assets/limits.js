// The request-limits panel of one node: its limits document in an editor, the service's methods,
// and Apply (to the node, or to every node of its service) and Clear. A refused document lists
// each problem at its line:column. console.js opens it from a node's Limits button and lends its
// helpers; every text from the API goes in through el() (textContent), never as HTML.
'use strict';

window.ProbeLimits = (() => {
  let ui = null; // helpers from console.js: api, el, visible, changePanel, env
  let kit = null; // the section's status, change runner and show/hide (console.js changePanel)
  const panel = { appkey: null, service: null, address: null, env: null };
  const $ = (id) => document.getElementById(id);
  // `/limits/{appkey}/{service}?env=[&node=]`: the node's when `scope` is `node`.
  function url(scope) {
    const params = new URLSearchParams({ env: panel.env });
    if (scope === 'node') params.set('node', panel.address);
    return `/limits/${encodeURIComponent(panel.appkey)}/${encodeURIComponent(panel.service)}?${params}`;
  }

  // Puts the caret at line:column (1-based, in characters) of the editor.
  function caret(line, column) {
    const editor = $('limits-text');
    const lines = editor.value.split('\n');
    let offset = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) offset += lines[i].length + 1;
    offset += [...(lines[line - 1] || '')].slice(0, Math.max(column - 1, 0)).join('').length;
    editor.focus();
    editor.setSelectionRange(offset, offset);
  }

  function showProblems(problems) {
    $('limits-problems').replaceChildren(...(problems || []).map((p) => ui.el('li',
      { dataset: { line: String(p.line ?? ''), column: String(p.column ?? ''), pointer: p.pointer ?? '' }, title: 'show in the editor',
        onclick: () => { if (p.line) caret(p.line, p.column); } },
      ui.el('span', { className: 'loc' }, p.line ? `${p.line}:${p.column}` : '–'), ' ',
      ...(p.pointer ? [ui.el('code', {}, p.pointer), ' '] : []), p.message)));
  }

  // Reads the service's methods and the node's limits into the editor.
  async function load() {
    const data = await ui.api('GET', url('service'));
    const node = data.nodes.find((n) => n.address === panel.address);
    $('limits-methods').textContent = ui.visible(data.methods.length
      ? `methods: ${data.methods.join(', ')}` : 'no running node declares its methods: method names are not checked');
    $('limits-now').textContent = ui.visible(node ? `now: ${node.summary}` : 'now: none');
    // The provider refused the limits in its data: it runs the ones before, and says why.
    const refused = node && node.limits_problem;
    $('limits-refused').hidden = !refused;
    $('limits-refused').textContent = ui.visible(refused ? `refused by its provider (it keeps the limits before): ${refused}` : '');
    $('limits-text').value = node && node.limits ? JSON.stringify(node.limits, null, 2) : '';
  }

  const scope = () => $('limits-scope').value;

  function apply() {
    return kit.run($('limits-apply'), async () => {
      const answer = await ui.api('PUT', url(scope()), { text: $('limits-text').value || '{}' });
      await kit.done(answer, 'applied');
    });
  }

  function clear() {
    return kit.run($('limits-clear'), async () => kit.done(await ui.api('DELETE', url(scope())), 'cleared'));
  }

  // Opens the panel for node `n` of the nodes table (its service, address and id).
  function open(appkey, n) {
    Object.assign(panel, { appkey, service: n.service, address: `${n.ip}:${n.name_port}`, env: ui.env() });
    $('limits-target').textContent = ui.visible(n.id);
    $('limits-section').dataset.node = n.node;
    kit.show();
  }

  function close() {
    Object.assign(panel, { appkey: null, service: null, address: null });
    kit.hide();
  }

  function setup(helpers) {
    ui = helpers;
    kit = ui.changePanel('limits', { showProblems, load });
    $('limits-apply').addEventListener('click', apply);
    $('limits-clear').addEventListener('click', clear);
    $('limits-close').addEventListener('click', close);
  }

  return { setup, open, close };
})();
