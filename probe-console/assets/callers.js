// The caller-policy panel of one service: each node's policy (and the problems of a stored document
// that is no policy), a form for the policy (which apps may call; what happens to callers that
// prove no appkey) with the document it sends, and Apply (to every node of the service) and Clear.
// A refused document lists each problem with the appkey it is about. Credentials are never issued
// or shown here: the panel only names allowed apps that have none. console.js opens it from a
// node's Callers button and lends its helpers; every text from the API goes in through el()
// (textContent), never as HTML.
'use strict';

window.ProbeCallers = (() => {
  let ui = null; // helpers from console.js: api, el, visible, changePanel, env
  let kit = null; // the section's status, change runner and show/hide (console.js changePanel)
  const panel = { appkey: null, service: null, env: null };
  const $ = (id) => document.getElementById(id);
  const url = () => `/callers/${encodeURIComponent(panel.appkey)}/${encodeURIComponent(panel.service)}?${new URLSearchParams({ env: panel.env })}`;

  // The appkeys typed in the allow box, in order (separated by spaces or commas).
  const listed = () => $('callers-allow').value.split(/[\s,]+/).filter(Boolean);

  // The policy document the form stands for.
  function documentOf() {
    const doc = {};
    if ($('callers-proven').value === 'listed') doc.allow = listed();
    doc.unauthenticated = $('callers-unauthenticated').value;
    return doc;
  }

  function showDocument() {
    $('callers-allow').disabled = $('callers-proven').value !== 'listed';
    $('callers-document').textContent = ui.visible(JSON.stringify(documentOf()));
  }

  // Problems of a refused document (`err.sent`: the document sent); one about `/allow/N` names
  // the appkey it is about.
  function showProblems(problems, err) {
    const sent = err && err.sent;
    $('callers-problems').replaceChildren(...(problems || []).map((p) => {
      const index = /^\/allow\/(\d+)$/.exec(p.pointer || '');
      const about = index && sent && sent.allow ? ` (${JSON.stringify(sent.allow[Number(index[1])])})` : '';
      return ui.el('li', { dataset: { pointer: p.pointer ?? '' } },
        ...(p.pointer ? [ui.el('code', {}, `${p.pointer}${about}`), ' '] : []), p.message);
    }));
  }

  function nodeRow(n) {
    const problems = (n.problems || []).map((p) => ui.el('span', { className: 'callers-problem', dataset: { role: 'callers-problem' } },
      `${p.pointer || ''} ${p.message}`));
    return ui.el('tr', { dataset: { node: n.node, running: String(n.running) } },
      ui.el('td', { className: 'mono' }, n.address), ui.el('td', {}, n.running ? 'yes' : 'no'),
      ui.el('td', { className: 'wrap', dataset: { role: 'callers' } }, n.summary,
        ...(n.stored ? [ui.el('span', { className: 'tag' }, `stored: ${n.stored}`)] : []), ...problems));
  }

  // Reads each node's policy into the table, and the first valid one into the form.
  async function load() {
    const data = await ui.api('GET', url());
    $('callers-nodes').tBodies[0].replaceChildren(...data.nodes.map(nodeRow));
    const lacking = data.without_credential || [];
    const warn = lacking.length
      ? `Allowed but without a credential: ${lacking.join(', ')}. Their calls cannot prove their appkey, so they count as ` +
        'callers that prove none; issue one with `probe apps credential rotate APPKEY`.'
      : data.credentials_problem ? `Cannot tell which allowed apps have a credential: ${data.credentials_problem}` : '';
    $('callers-uncredentialed').hidden = !warn;
    $('callers-uncredentialed').textContent = ui.visible(warn);
    const policy = (data.nodes.find((n) => n.callers && !(n.problems || []).length) || {}).callers;
    $('callers-proven').value = policy && Array.isArray(policy.allow) ? 'listed' : 'any';
    $('callers-allow').value = policy && Array.isArray(policy.allow) ? policy.allow.join(' ') : '';
    $('callers-unauthenticated').value = (policy && policy.unauthenticated) || 'allow';
    $('callers-section').dataset.now = policy ? JSON.stringify(policy) : '';
    showDocument();
  }

  function apply() {
    return kit.run($('callers-apply'), async () => {
      const sent = documentOf();
      try {
        await kit.done(await ui.api('PUT', url(), sent), 'applied');
      } catch (err) {
        err.sent = sent;
        throw err;
      }
    });
  }

  function clear() {
    return kit.run($('callers-clear'), async () => kit.done(await ui.api('DELETE', url()), 'cleared'));
  }

  // Opens the panel for `service` of `appkey`.
  function open(appkey, service) {
    Object.assign(panel, { appkey, service, env: ui.env() });
    $('callers-target').textContent = ui.visible(`${appkey}/${service}`);
    $('callers-section').dataset.service = service;
    kit.show();
  }

  function close() {
    Object.assign(panel, { appkey: null, service: null });
    kit.hide();
  }

  function setup(helpers) {
    ui = helpers;
    kit = ui.changePanel('callers', { showProblems, load });
    $('callers-apply').addEventListener('click', apply);
    $('callers-clear').addEventListener('click', clear);
    $('callers-close').addEventListener('click', close);
    for (const id of ['callers-proven', 'callers-allow', 'callers-unauthenticated']) {
      $(id).addEventListener('input', showDocument);
      $(id).addEventListener('change', showDocument);
    }
  }

  return { setup, open, close };
})();
