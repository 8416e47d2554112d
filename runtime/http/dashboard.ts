/**
 * The dashboard at `GET /`: one page with its style and script inline (no build step, nothing
 * loaded from elsewhere), polling `/cluster.json` each POLL_MS and drawing load over time as
 * inline SVG from the samples it has seen. It is kept as a string here, not as an .html file,
 * so it ships with the compiled package like any module. Everything from the JSON is written
 * with textContent, never as HTML.
 */

const POLL_MS = 1000;
/** Samples kept per node (and drawn): 5 minutes at one a second. */
const HISTORY = 300;

const STYLE = `
  :root { --fg: #1d232a; --muted: #66707a; --line: #dde2e6; --bg: #f6f8fa; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #fff;
    border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  header .meta { color: var(--muted); }
  #conn.down { color: #b3261e; font-weight: 600; }
  main { padding: 16px 24px; display: grid; gap: 16px; max-width: 1200px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
  h2 { font-size: 15px; margin: 0 0 8px; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 500; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  code { font-size: 12px; }
  .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 6px; }
  .state { padding: 1px 8px; border-radius: 10px; font-size: 12px; background: #e6f4ea; color: #137333; }
  .state.paused { background: #fef7e0; color: #8a5a00; }
  .state.draining, .state.stopping { background: #fce8e6; color: #a50e0e; }
  .state.starting { background: #e8f0fe; color: #174ea6; }
  .empty { color: var(--muted); }
  svg text { font-size: 11px; fill: var(--muted); }
`;

const SCRIPT = `
  const POLL_MS = ${POLL_MS};
  const HISTORY = ${HISTORY};
  const COLORS = ['#1a73e8', '#e8710a', '#188038', '#d93025', '#9334e6', '#12b5cb', '#f9ab00', '#5f6368'];
  const history = new Map();
  const colors = new Map();
  const $ = (id) => document.getElementById(id);

  function el(tag, props, children) {
    const e = document.createElement(tag);
    Object.assign(e, props || {});
    for (const c of children || []) e.append(c);
    return e;
  }
  function cell(text, cls) { return el('td', { textContent: String(text), className: cls || '' }); }
  function short(hash) { return hash ? hash.slice(0, 12) : 'none'; }
  function colorOf(id) {
    if (!colors.has(id)) colors.set(id, COLORS[colors.size % COLORS.length]);
    return colors.get(id);
  }
  function rate(n, unit) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + ' M' + unit;
    if (n >= 1e3) return (n / 1e3).toFixed(1) + ' k' + unit;
    return (n === 0 || n >= 10 ? n.toFixed(0) : n.toFixed(1)) + (unit ? ' ' + unit : '');
  }

  function drawNodes(view) {
    const body = $('nodes');
    body.replaceChildren();
    for (const n of view.nodes) {
      const id = el('td', {}, [el('span', { className: 'swatch' }), el('code', { textContent: n.id.slice(0, 16) })]);
      id.firstChild.style.background = colorOf(n.id);
      id.title = n.id;
      const state = el('td', {}, [el('span', { className: 'state ' + n.state, textContent: n.state })]);
      state.dataset.field = 'state';
      const clients = cell(n.load.clients, 'num');
      clients.dataset.field = 'clients';
      const row = el('tr', {}, [
        id,
        state,
        clients,
        cell((n.load.cpu * 100).toFixed(0) + ' %', 'num'),
        cell(rate(n.load.packetsPerSecond, ''), 'num'),
        cell(rate(n.load.bytesPerSecond, 'B'), 'num'),
        cell(n.publicAddress),
        cell(n.id === view.node ? 'this node' : ''),
      ]);
      row.dataset.node = n.id;
      body.append(row);
    }
  }

  function drawChart() {
    const svg = $('chart');
    const w = Math.max(300, svg.clientWidth || 800), h = 160, left = 34, bottom = 18;
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    const now = Date.now();
    let oldest = now;
    let max = 1;
    for (const samples of history.values()) {
      for (const s of samples) max = Math.max(max, s.clients);
      if (samples.length) oldest = Math.min(oldest, samples[0].at);
    }
    // The time axis grows with what the page has seen, from one minute up to HISTORY samples.
    const minutes = Math.min(HISTORY * POLL_MS / 60000, Math.max(1, Math.ceil((now - oldest) / 60000)));
    const span = minutes * 60000;
    const x = (t) => left + ((t - (now - span)) / span) * (w - left - 4);
    const y = (v) => (h - bottom) - (v / max) * (h - bottom - 8);
    const parts = [];
    for (const v of [0, max]) {
      parts.push('<line x1="' + left + '" x2="' + w + '" y1="' + y(v) + '" y2="' + y(v) + '" stroke="#dde2e6"/>');
      parts.push('<text x="' + (left - 6) + '" y="' + (y(v) + 4) + '" text-anchor="end">' + v + '</text>');
    }
    parts.push('<text x="' + left + '" y="' + (h - 4) + '">-' + minutes + ' min</text>');
    parts.push('<text x="' + (w - 4) + '" y="' + (h - 4) + '" text-anchor="end">now</text>');
    for (const [id, samples] of history) {
      const points = samples.map((s) => x(s.at).toFixed(1) + ',' + y(s.clients).toFixed(1)).join(' ');
      parts.push('<polyline fill="none" stroke-width="2" stroke="' + colorOf(id) + '" points="' + points + '"/>');
    }
    // Only numbers and fixed colors reach the markup: ids stay in the table, written as text.
    svg.innerHTML = parts.join('');
  }

  function drawApps(view) {
    const body = $('apps');
    body.replaceChildren();
    const names = Object.keys(view.apps).sort();
    $('apps-empty').hidden = names.length > 0;
    for (const app of names) {
      for (const [version, nodes] of Object.entries(view.apps[app])) {
        const v = cell(short(version));
        v.dataset.field = 'version';
        const row = el('tr', {}, [cell(app), v, cell(nodes.length + ' of ' + view.nodes.length + ' nodes')]);
        row.dataset.app = app;
        row.title = version;
        body.append(row);
      }
    }
    const errors = view.nodes.flatMap((n) => Object.entries(n.errors).map(([app, why]) =>
      el('li', { textContent: n.id.slice(0, 16) + ' could not load ' + app + ': ' + why })));
    $('load-errors').replaceChildren(...errors);
  }

  function drawList(id, items, describe) {
    $(id).replaceChildren(...items.map((item) => el('li', { textContent: describe(item) })));
    $(id + '-empty').hidden = items.length > 0;
  }

  // One row per live publication: where it is published (its origin) and who plays it where.
  function drawPublications(view) {
    const rows = view.publications.map((p) => {
      const perNode = Object.entries(p.nodes).sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([node, n]) => node.slice(0, 16) + ': ' + n).join(', ');
      const origin = el('td', {}, [el('code', { textContent: p.node.slice(0, 16) })]);
      origin.title = p.node;
      const row = el('tr', {}, [cell(p.app), cell(p.name), origin, cell(p.subscribers, 'num'), cell(perNode || '-')]);
      row.dataset.publication = p.app + '/' + p.name;
      return row;
    });
    $('publications').replaceChildren(...rows);
    $('publications-empty').textContent = view.publicationsUnavailable
      ? 'Unknown: the cluster store could not be read.'
      : 'None: no stream is published.';
    $('publications-empty').hidden = rows.length > 0;
  }

  async function poll() {
    try {
      const res = await fetch('/cluster.json', { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const view = await res.json();
      $('cluster').textContent = view.cluster || '(starting: ' + view.waiting + ')';
      $('self').textContent = view.node ? view.node.slice(0, 16) : '(starting)';
      $('conn').textContent = 'updated ' + new Date().toLocaleTimeString();
      $('conn').className = '';
      const seen = new Set();
      for (const n of view.nodes) {
        seen.add(n.id);
        const samples = history.get(n.id) || [];
        samples.push({ at: Date.now(), clients: n.load.clients });
        if (samples.length > HISTORY) samples.shift();
        history.set(n.id, samples);
      }
      for (const id of history.keys()) if (!seen.has(id)) history.delete(id);
      drawNodes(view);
      drawChart();
      drawApps(view);
      drawList('groups', view.groups, (g) => g.id + ': ' + g.size + (g.size === 1 ? ' member' : ' members'));
      drawPublications(view);
      document.body.dataset.updated = String(view.at);
    } catch (e) {
      $('conn').textContent = 'node unreachable (' + e.message + '), retrying';
      $('conn').className = 'down';
    }
    setTimeout(poll, POLL_MS);
  }
  poll();
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fnhost dashboard</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>fnhost</h1>
  <span class="meta">cluster <b id="cluster">…</b> · seen from node <code id="self">…</code></span>
  <span class="meta" id="conn">loading…</span>
</header>
<main>
  <section>
    <h2>Nodes</h2>
    <table>
      <thead><tr><th>node</th><th>state</th><th>clients</th><th>cpu</th><th>packets/s</th><th>bytes/s</th><th>public address</th><th></th></tr></thead>
      <tbody id="nodes"></tbody>
    </table>
  </section>
  <section>
    <h2>Clients per node</h2>
    <svg id="chart" width="100%" height="160" role="img" aria-label="clients per node over time"></svg>
  </section>
  <section>
    <h2>Apps and versions</h2>
    <table>
      <thead><tr><th>app</th><th>version</th><th>running on</th></tr></thead>
      <tbody id="apps"></tbody>
    </table>
    <p class="empty" id="apps-empty">No app deployed (fnhost deploy functions/).</p>
    <ul id="load-errors"></ul>
  </section>
  <section>
    <h2>Groups</h2>
    <ul id="groups"></ul>
    <p class="empty" id="groups-empty">None: no client is in a NetGroup.</p>
  </section>
  <section>
    <h2>Publications</h2>
    <table>
      <thead><tr><th>app</th><th>stream</th><th>origin</th><th>players</th><th>players per node</th></tr></thead>
      <tbody id="publications"></tbody>
    </table>
    <p class="empty" id="publications-empty">None: no stream is published.</p>
  </section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
