// The node's web page. It only reads: every request is a GET carrying the
// page's access key (from this page's own URL) in a header. Everything the
// node sends — records, reasons, arguments — is shown as text, never as HTML.
import cytoscape from '/vendor/cytoscape.js';

const key = new URLSearchParams(location.search).get('key') ?? '';
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const short = (id) => (id.startsWith('did:key:') ? `${id.slice(0, 16)}…${id.slice(-4)}` : id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);

const api = async (path, params = {}) => {
  const query = new URLSearchParams(params).toString();
  const response = await fetch(query ? `${path}?${query}` : path, { headers: { 'X-Grid-Key': key }, cache: 'no-store' });
  if (!response.ok) throw new Error((await response.text()).trim() || `HTTP ${response.status}`);
  return response.json();
};

/** Replace an element's children with list items made by `make` (which returns a node or text). */
const fill = (list, items, make, empty = 'none') => {
  list.replaceChildren(
    ...(items.length === 0 ? [Object.assign(document.createElement('li'), { className: 'muted', textContent: empty })] : items.map((item) => {
      const li = document.createElement('li');
      li.append(make(item));
      return li;
    })),
  );
};

const linkButton = (text, title, onClick) => {
  const button = Object.assign(document.createElement('button'), { type: 'button', className: 'link', textContent: text, title });
  button.addEventListener('click', onClick);
  return button;
};

const cy = cytoscape({
  container: $('graph'),
  minZoom: 0.05,
  maxZoom: 4,
  style: [
    { selector: 'node', style: { label: 'data(label)', 'font-size': 9, 'text-valign': 'center', 'text-halign': 'center', width: 130, height: 28, 'border-width': 1, 'border-color': '#8b949e', 'text-wrap': 'ellipsis', 'text-max-width': 124 } },
    { selector: 'node[kind = "principal"]', style: { shape: 'ellipse', 'background-color': '#dbeafe' } },
    { selector: 'node[kind = "token"]', style: { shape: 'rectangle', 'background-color': '#fef3c7' } },
    { selector: 'node[kind = "delegation"]', style: { shape: 'round-rectangle', 'background-color': '#dcfce7' } },
    { selector: 'node[kind = "module"]', style: { shape: 'cut-rectangle', 'background-color': '#ede9fe' } },
    { selector: 'node[?self]', style: { 'border-width': 3, 'border-color': '#1f2d3d', 'font-weight': 'bold' } },
    { selector: 'node[?revoked]', style: { 'border-width': 3, 'border-color': '#cf222e' } },
    { selector: 'node:selected', style: { 'overlay-color': '#0969da', 'overlay-opacity': 0.2 } },
    { selector: 'edge', style: { label: 'data(label)', 'font-size': 8, 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', width: 1.5, 'line-color': '#8b949e', 'target-arrow-color': '#8b949e', 'text-background-color': '#fff', 'text-background-opacity': 0.8, 'text-rotation': 'autorotate' } },
    { selector: 'edge[style = "dashed"]', style: { 'line-style': 'dashed' } },
    { selector: 'edge[style = "dotted"]', style: { 'line-style': 'dotted' } },
    { selector: 'edge[style = "bold"]', style: { width: 3.5 } },
    { selector: 'edge[label ^= "revoked"]', style: { 'line-color': '#cf222e', 'target-arrow-color': '#cf222e' } },
  ],
});
// For tests and for the curious: the graph as cytoscape holds it (reading it grants nothing).
window.gridGraph = cy;

const layout = () => cy.layout({ name: 'breadthfirst', directed: true, spacingFactor: 1.15, padding: 20, animate: false }).run();

let filter = '';
let selected = null;

const applyGraph = (graph) => {
  const incoming = [...graph.elements.nodes.map((e) => ({ group: 'nodes', ...e })), ...graph.elements.edges.map((e) => ({ group: 'edges', ...e }))];
  const wanted = new Set(incoming.map((e) => e.data.id));
  let added = false;
  cy.batch(() => {
    cy.elements().filter((el) => !wanted.has(el.id())).remove();
    for (const element of incoming) {
      const existing = cy.getElementById(element.data.id);
      if (existing.nonempty()) existing.data(element.data);
      else {
        cy.add(element);
        added = true;
      }
    }
  });
  if (added) layout();
  const shown = graph.capped ? `drawing the latest ${graph.drawn} of ${graph.records} records` : `${graph.records} records`;
  $('graph-note').textContent = `${graph.filter ? `filtered by ${short(graph.filter)}: ` : ''}${shown}; ${cy.nodes().length} nodes`;
  document.body.dataset.graphRecords = String(graph.drawn);
};

const showState = (state) => {
  $('principal').textContent = state.principal;
  $('rate').textContent = state.callsPerSecond.toFixed(1);
  $('records').textContent = String(state.records);
  fill($('peers'), state.peers, (peer) => {
    const span = document.createElement('span');
    const status = Object.assign(document.createElement('span'), {
      className: peer.connected ? 'ok' : 'bad',
      textContent: peer.connected ? '● connected' : `○ down (${peer.failures} failures)`,
    });
    span.append(status, ` ${peer.url}`, peer.principal ? ` — ${short(peer.principal)}` : '');
    return span;
  });
  $('token-count').textContent = `(${state.tokenCount})`;
  fill($('tokens'), state.tokens, (token) => {
    const span = document.createElement('span');
    const name = `${short(token.token)} #${token.export}`;
    span.append(linkButton(name, `filter by ${token.token}`, () => setFilter(token.token)), ` ${token.calls} calls${token.revoked ? ', revoked' : ''}`);
    if (token.revoked) span.className = 'bad';
    return span;
  });
};

const showRecord = async (seq) => {
  const record = await api('/api/record', { seq });
  $('record').textContent = record.json;
  $('record').dataset.seq = String(record.seq);
};

const showAbout = async (id) => {
  selected = id;
  const about = await api('/api/about', { id });
  if (selected !== id) return;
  const node = cy.getElementById(id);
  $('selected').textContent = `${node.nonempty() ? node.data('kind') : 'id'} ${id}`;
  $('selected').classList.remove('muted');
  $('about-count').textContent = `(${about.total}${about.total > about.records.length ? `, latest ${about.records.length}` : ''})`;
  fill($('about'), about.records, (record) => linkButton(record.text, `show record #${record.seq}`, () => void showRecord(record.seq).catch(report)), 'no records');
  if (about.defining) {
    $('record').textContent = about.defining.json;
    $('record').dataset.seq = String(about.defining.seq);
  } else if (about.records[0]) await showRecord(about.records[0].seq);
  else $('record').textContent = '';
};

const report = (error) => {
  $('graph-note').textContent = `error: ${error.message}`;
};

const refresh = async () => {
  const [state, graph] = await Promise.all([api('/api/state'), api('/api/graph', filter ? { filter } : {})]);
  showState(state);
  applyGraph(graph);
  if (selected) await showAbout(selected);
};

const setFilter = (value) => {
  filter = value.trim();
  $('filter').value = filter;
  void refresh().catch(report);
};

// Refreshes triggered by live records are coalesced: at most one in flight, one more queued.
let refreshing = null;
let again = false;
const scheduleRefresh = () => {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = sleep(150)
    .then(refresh)
    .catch(report)
    .finally(() => {
      refreshing = null;
      if (again) {
        again = false;
        scheduleRefresh();
      }
    });
};

const log = [];
const onRecords = (payload) => {
  $('records').textContent = String(payload.total);
  for (const record of payload.records) log.unshift(record.text);
  if (payload.skipped > 0) log.unshift(`… ${payload.skipped} more records not shown`);
  log.length = Math.min(log.length, 50);
  fill($('log'), log, (text) => text, 'none yet');
  scheduleRefresh();
};

/** The live stream: Server-Sent Events read through fetch, so the key travels in a header, not the URL. */
const follow = async () => {
  for (;;) {
    try {
      const response = await fetch('/api/live', { headers: { 'X-Grid-Key': key }, cache: 'no-store' });
      if (!response.ok) throw new Error((await response.text()).trim());
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event === 'hello') {
            $('live').textContent = 'live';
            $('live').className = 'ok';
            $('records').textContent = String(JSON.parse(data).total);
          } else if (event === 'records') onRecords(JSON.parse(data));
        }
      }
      throw new Error('stream ended');
    } catch (error) {
      $('live').textContent = `reconnecting (${error.message})`;
      $('live').className = 'bad';
    }
    await sleep(2000);
  }
};

cy.on('tap', 'node', (event) => void showAbout(event.target.id()).catch(report));
cy.on('dbltap', 'node', (event) => setFilter(event.target.id()));
$('filter-form').addEventListener('submit', (event) => {
  event.preventDefault();
  setFilter($('filter').value);
});
$('clear').addEventListener('click', () => setFilter(''));

await refresh().catch(report);
setInterval(() => void api('/api/state').then(showState).catch(() => {}), 2000);
void follow();
