// The node's web page: the node, its promise graph and the documents it
// holds. It only reads: every request is a GET carrying the
// page's access key (from this page's own URL) in a header. Everything the
// node sends — records, reasons, arguments — is shown as text, never as HTML.
import cytoscape from '/vendor/cytoscape.js';

const key = new URLSearchParams(location.search).get('key') ?? '';
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const short = (id) => (id.startsWith('did:key:') ? `${id.slice(0, 16)}…${id.slice(-4)}` : id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);
/** The home's pet names (id → name), as the node last sent them. */
let names = {};
const label = (id) => (Object.hasOwn(names, id) ? names[id] : short(id));
/** The zoom at which labels read comfortably; a larger graph opens at this zoom on its latest part instead of shrinking to fit. */
const READABLE_ZOOM = 1;
/** A small graph is not blown up past this. */
const MAX_FIT_ZOOM = 1.6;
/** Spacing of the layout, in graph pixels: between the graph's levels, between rows of one level, between nodes in a row. */
const LEVEL_GAP = 150;
const ROW_GAP = 80;
const NODE_GAP = 30;
/** More edges than this and only the edges of the node pointed at or selected show their labels. */
const MAX_LABELLED_EDGES = 24;

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
    { selector: 'node', style: { label: 'data(label)', 'font-size': 13, color: '#1b1f24', 'text-valign': 'center', 'text-halign': 'center', width: 170, height: 34, 'border-width': 1, 'border-color': '#8b949e', 'text-wrap': 'ellipsis', 'text-max-width': 160 } },
    { selector: 'node[?name]', style: { 'font-weight': 'bold' } },
    { selector: 'node[kind = "principal"]', style: { shape: 'ellipse', 'background-color': '#dbeafe', width: 290, 'text-max-width': 270 } },
    { selector: 'node[kind = "token"]', style: { shape: 'rectangle', 'background-color': '#fef3c7' } },
    { selector: 'node[kind = "delegation"]', style: { shape: 'round-rectangle', 'background-color': '#dcfce7' } },
    { selector: 'node[kind = "module"]', style: { shape: 'cut-rectangle', 'background-color': '#ede9fe' } },
    { selector: 'node[?self]', style: { 'border-width': 3, 'border-color': '#1f2d3d', 'font-weight': 'bold' } },
    { selector: 'node[?revoked]', style: { 'border-width': 3, 'border-color': '#cf222e' } },
    { selector: 'node:selected', style: { 'overlay-color': '#0969da', 'overlay-opacity': 0.2 } },
    { selector: 'edge', style: { label: 'data(label)', 'font-size': 11, color: '#3d444d', 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', width: 1.5, 'line-color': '#8b949e', 'target-arrow-color': '#8b949e', 'text-background-color': '#fff', 'text-background-opacity': 0.8, 'text-rotation': 'autorotate' } },
    { selector: 'edge[style = "dashed"]', style: { 'line-style': 'dashed' } },
    { selector: 'edge[style = "dotted"]', style: { 'line-style': 'dotted' } },
    { selector: 'edge[style = "bold"]', style: { width: 3.5 } },
    { selector: 'edge[label ^= "revoked"]', style: { 'line-color': '#cf222e', 'target-arrow-color': '#cf222e' } },
    { selector: 'edge.unlabelled', style: { 'text-opacity': 0, 'text-background-opacity': 0 } },
  ],
});
// For tests and for the curious: the graph as cytoscape holds it (reading it grants nothing).
window.gridGraph = cy;

/**
 * Lay the graph out: breadthfirst gives the levels (who issued, what was issued,
 * what it runs); each level is then laid in rows as wide as the view at a
 * readable zoom, so a node with many tokens makes a taller graph, not a wider
 * and smaller one. If the whole does not fit at a readable zoom, the view opens
 * at that zoom on `focus` (what the latest record names).
 */
const layout = (focus) => {
  cy.layout({ name: 'breadthfirst', directed: true, spacingFactor: 1.15, padding: 20, animate: false }).run();
  const levels = new Map();
  for (const node of cy.nodes()) {
    const y = Math.round(node.position('y'));
    if (!levels.has(y)) levels.set(y, []);
    levels.get(y).push(node);
  }
  const room = Math.max(cy.width() / READABLE_ZOOM - 40, 400);
  let y = 0;
  for (const level of [...levels.keys()].sort((a, b) => a - b)) {
    const nodes = levels.get(level).sort((a, b) => a.position('x') - b.position('x'));
    for (let start = 0; start < nodes.length; ) {
      const row = [];
      let width = 0;
      while (start < nodes.length && (row.length === 0 || width + nodes[start].outerWidth() + NODE_GAP <= room)) {
        width += nodes[start].outerWidth() + (row.length ? NODE_GAP : 0);
        row.push(nodes[start++]);
      }
      let x = -width / 2;
      for (const node of row) {
        node.position({ x: x + node.outerWidth() / 2, y });
        x += node.outerWidth() + NODE_GAP;
      }
      y += ROW_GAP;
    }
    y += LEVEL_GAP - ROW_GAP;
  }
  cy.fit(undefined, 20);
  if (cy.zoom() > MAX_FIT_ZOOM) {
    cy.zoom(MAX_FIT_ZOOM);
    cy.center();
  }
  if (cy.zoom() >= READABLE_ZOOM) return;
  // The rows are as wide as the view: centre it across, and down on the focus (from the top if the focus is near it).
  const around = cy.collection(focus.map((id) => cy.getElementById(id)).filter((node) => node.nonempty()));
  const target = (around.nonempty() ? around : cy.nodes('[?self]')).boundingBox();
  const whole = cy.elements().boundingBox();
  cy.zoom(READABLE_ZOOM);
  const z = cy.zoom();
  cy.pan({ x: cy.width() / 2 - ((whole.x1 + whole.x2) / 2) * z, y: Math.min(cy.height() / 2 - ((target.y1 + target.y2) / 2) * z, 20 - whole.y1 * z) });
};

/** With many edges their labels would pile up: then only a pointed-at or selected node's edges are labelled. */
const labelEdges = () => {
  const many = cy.edges().length > MAX_LABELLED_EDGES;
  cy.edges().toggleClass('unlabelled', many);
  if (many) cy.nodes(':selected').connectedEdges().removeClass('unlabelled');
};
cy.on('mouseover', 'node', (event) => event.target.connectedEdges().removeClass('unlabelled'));
cy.on('mouseout', 'node', (event) => {
  if (cy.edges().length > MAX_LABELLED_EDGES && !event.target.selected()) event.target.connectedEdges().addClass('unlabelled');
});
cy.on('select unselect', 'node', labelEdges);

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
  if (added) layout(graph.latest ?? []);
  labelEdges();
  const shown = graph.capped ? `drawing the latest ${graph.drawn} of ${graph.records} records` : `${graph.records} records`;
  const [view, all] = [cy.extent(), cy.elements().boundingBox()];
  const zoomed = view.x1 > all.x1 + 1 || view.x2 < all.x2 - 1 || view.y1 > all.y1 + 1 || view.y2 < all.y2 - 1 ? ' (drag, or scroll out, for the rest)' : '';
  $('graph-note').textContent = `${graph.filter ? `filtered by ${graph.name ?? label(graph.filter)}: ` : ''}${shown}; ${cy.nodes().length} nodes${zoomed}`;
  document.body.dataset.graphRecords = String(graph.drawn);
};

/** The apps this node hosts, as /api/apps last said: a tab's documents link to theirs. */
let hostedApps = [];

/** The tab nodes connected here (browsers that opened an app or the tab page): each with the closures it answers and the documents it syncs, an app's as a link to it. */
const showTabs = (tabs) => {
  $('tab-count').textContent = `(${tabs.length})`;
  fill($('tabs'), tabs, (tab) => {
    const span = document.createElement('span');
    span.append(Object.assign(document.createElement('span'), { className: 'ok', textContent: '● ' }), Object.assign(document.createElement('span'), { textContent: label(tab.principal), title: tab.principal }));
    span.append(` — ${tab.closures} closure${tab.closures === 1 ? '' : 's'}`);
    tab.docs.forEach((doc, i) => {
      span.append(i === 0 ? '; syncs ' : ', ');
      const app = hostedApps.find((hosted) => hosted.doc === doc);
      if (app) span.append(Object.assign(document.createElement('a'), { href: app.path, textContent: app.title, title: `open the app (document ${doc})`, rel: 'noopener noreferrer', target: '_blank' }));
      else span.append(linkButton(label(doc), `show document ${doc}`, () => void showDoc(doc, true).catch(report)));
    });
    return span;
  });
};

const showState = (state) => {
  names = state.names ?? {};
  $('principal').textContent = state.principal;
  $('rate').textContent = state.callsPerSecond.toFixed(1);
  $('records').textContent = String(state.records);
  fill($('peers'), state.peers, (peer) => {
    const span = document.createElement('span');
    const status = Object.assign(document.createElement('span'), {
      className: peer.connected ? 'ok' : 'bad',
      textContent: peer.connected ? '● connected' : `○ down (${peer.failures} failures)`,
    });
    span.append(status, ` ${peer.url}`, peer.principal ? ` — ${label(peer.principal)}` : '');
    return span;
  });
  showTabs(state.tabs ?? []);
  $('token-count').textContent = `(${state.tokenCount})`;
  fill($('tokens'), state.tokens, (token) => {
    const span = document.createElement('span');
    const name = `${label(token.token)} #${token.export}`;
    span.append(linkButton(name, `filter by ${token.token}`, () => setFilter(token.token)), ` ${token.calls} calls${token.revoked ? ', revoked' : ''}`);
    if (token.revoked) span.className = 'bad';
    return span;
  });
};

// The documents held here. A document's versions are drawn in a graph of their own, genesis first.
const docCy = cytoscape({
  container: $('doc-graph'),
  minZoom: 0.1,
  maxZoom: 3,
  style: [
    { selector: 'node', style: { label: 'data(label)', 'font-size': 12, 'text-valign': 'center', 'text-halign': 'center', width: 200, height: 30, shape: 'round-rectangle', 'border-width': 1, 'border-color': '#8b949e', 'text-wrap': 'ellipsis', 'text-max-width': 190 } },
    { selector: 'node[by = "genesis"]', style: { 'background-color': '#e5e7eb' } },
    { selector: 'node[by = "change"]', style: { 'background-color': '#fef3c7' } },
    { selector: 'node[by = "merge"]', style: { 'background-color': '#dcfce7' } },
    { selector: 'node[by = "settle"]', style: { 'background-color': '#dbeafe' } },
    { selector: 'node[?head]', style: { 'border-width': 3, 'border-color': '#1f2d3d', 'font-weight': 'bold' } },
    { selector: 'node:selected', style: { 'overlay-color': '#0969da', 'overlay-opacity': 0.2 } },
    { selector: 'edge', style: { 'curve-style': 'bezier', 'target-arrow-shape': 'triangle', width: 1.5, 'line-color': '#8b949e', 'target-arrow-color': '#8b949e' } },
  ],
});
window.gridDocGraph = docCy;

/** Grid data as one line (the node sent it as JSON), cut to `max` characters. */
const oneLine = (value, max = 60) => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};
const when = (ms) => (Number.isFinite(ms) ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '?');

let openDoc = null;
/** What the open document's view was drawn from, to redraw only when it changes. */
let drawnDoc = '';

const versionLabel = (entry, merges) =>
  entry.by === 'merge'
    ? `merge by ${merges[entry.step] ?? `step ${entry.step}`}`
    : entry.by === 'settle'
      ? `settled by ${label(entry.author)}`
      : entry.by === 'rules'
        ? `rules changed by ${label(entry.author)}: ${oneLine(entry.rules, 40)}`
        : `${label(entry.author)}${entry.via ? ' (delegated)' : ''}: ${oneLine(entry.change, 40)}`;

const conflictText = (conflict) => {
  const attempts = conflict.attempts.map((attempt) => `${label(attempt.step)} ${attempt.code}: ${attempt.reason}`).join('; ') || 'no merge steps';
  const outcome = conflict.settled ? `settled by version ${label(conflict.settled)}` : 'open: whoever holds the settle token resolves it (grid doc resolve)';
  return `${label(conflict.conflict)} between ${conflict.heads.map(label).join(' and ')} — ${attempts} — ${outcome}`;
};

const proposalText = (proposal) => {
  const votes = Object.entries(proposal.votes).map(([voter, choice]) => `${label(voter)} ${choice}`).join(', ') || 'none yet';
  const outcome = proposal.ended ? `${proposal.ended.status}: ${proposal.ended.reason}` : `open until ${when(proposal.deadline)}`;
  return `${label(proposal.proposal)} ${oneLine(proposal.change)} by ${label(proposal.proposer)} (quorum ${proposal.quorum} of ${proposal.members.length}) — votes: ${votes} — ${outcome}`;
};

const showDocument = (doc) => {
  $('document').hidden = false;
  // Drawn into while hidden, cytoscape would think its container had no size.
  docCy.resize();
  $('doc-title').textContent = `${Object.hasOwn(names, doc.doc) ? `${names[doc.doc]} = ` : ''}${doc.doc}`;
  $('doc-rules').textContent = `reducer ${label(doc.reducer)}; merge cascade ${doc.merges.map(label).join(' → ') || 'none'}; issued by ${label(doc.issuer)}; ${doc.heads.length} head${doc.heads.length === 1 ? '' : 's'}${doc.log.length >= 200 ? '; the latest 200 versions drawn' : ''}`;
  const heads = new Set(doc.heads);
  const ids = new Set([doc.doc, ...doc.log.map((entry) => entry.version)]);
  const byVersion = new Map(doc.log.map((entry) => [entry.version, entry]));
  docCy.batch(() => {
    docCy.elements().remove();
    docCy.add({ group: 'nodes', data: { id: doc.doc, label: 'genesis', by: 'genesis', head: heads.has(doc.doc) } });
    for (const entry of doc.log) docCy.add({ group: 'nodes', data: { id: entry.version, label: versionLabel(entry, doc.merges), by: entry.by, head: heads.has(entry.version) } });
    for (const entry of doc.log) {
      for (const parent of entry.parents) if (ids.has(parent)) docCy.add({ group: 'edges', data: { id: `${parent}>${entry.version}`, source: parent, target: entry.version } });
    }
  });
  docCy.layout({ name: 'breadthfirst', directed: true, roots: docCy.nodes().roots(), spacingFactor: 1.1, padding: 20, animate: false }).run();
  docCy.fit(undefined, 20);
  if (docCy.zoom() > MAX_FIT_ZOOM) {
    docCy.zoom(MAX_FIT_ZOOM);
    docCy.center();
  }
  docCy.off('tap', 'node');
  docCy.on('tap', 'node', (event) => {
    const entry = byVersion.get(event.target.id());
    $('selected').textContent = entry ? `version ${entry.version}` : `document ${doc.doc}`;
    $('selected').classList.remove('muted');
    $('record').textContent = JSON.stringify(entry ?? { doc: doc.doc, issuer: doc.issuer, reducer: doc.reducer, merges: doc.merges }, null, 2);
  });
  $('doc-conflict-count').textContent = `(${doc.conflicts.filter((conflict) => !conflict.settled).length} open of ${doc.conflicts.length})`;
  fill($('doc-conflicts'), doc.conflicts, conflictText);
  $('doc-proposal-count').textContent = `(${doc.proposals.filter((proposal) => !proposal.ended).length} open of ${doc.proposals.length})`;
  fill($('doc-proposals'), doc.proposals, proposalText);
  document.body.dataset.docVersions = String(doc.log.length);
};

const showDoc = async (id, force = false) => {
  openDoc = id;
  const doc = await api('/api/doc', { id });
  if (openDoc !== id) return;
  const drawn = JSON.stringify([doc.heads, doc.conflicts.map((c) => c.settled ?? ''), doc.proposals.map((p) => [p.votes, p.ended ?? ''])]);
  if (!force && drawn === drawnDoc) return;
  drawnDoc = drawn;
  showDocument(doc);
};

const showDocs = (docs) => {
  $('doc-count').textContent = `(${docs.length})`;
  fill($('docs'), docs, (doc) => {
    const span = document.createElement('span');
    span.append(linkButton(doc.name ?? short(doc.doc), `show document ${doc.doc}`, () => void showDoc(doc.doc, true).catch(report)), ` ${doc.heads.length} head${doc.heads.length === 1 ? '' : 's'}`);
    if (doc.conflicts > 0) span.append(Object.assign(document.createElement('span'), { className: 'bad', textContent: `, ${doc.conflicts} open conflict${doc.conflicts === 1 ? '' : 's'}` }));
    if (doc.proposals > 0) span.append(`, ${doc.proposals} open proposal${doc.proposals === 1 ? '' : 's'}`);
    return span;
  });
  if (openDoc) void showDoc(openDoc).catch(report);
};

/** The apps this node hosts, each a link to its page (its write token's address: whoever follows it can change the app's document). */
const showApps = (apps) => {
  hostedApps = apps;
  $('app-count').textContent = `(${apps.length})`;
  fill($('apps'), apps, (app) => {
    const link = Object.assign(document.createElement('a'), { href: app.path, textContent: app.title, title: `open the app (document ${app.doc})`, rel: 'noopener noreferrer', target: '_blank' });
    const span = document.createElement('span');
    span.append(link, ` ${app.name ?? short(app.token)}`);
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
  $('selected').textContent = `${node.nonempty() ? node.data('kind') : 'id'} ${Object.hasOwn(names, id) ? `${names[id]} = ` : ''}${id}`;
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
  const [state, graph, docs, apps] = await Promise.all([api('/api/state'), api('/api/graph', filter ? { filter } : {}), api('/api/docs'), api('/api/apps')]);
  // The apps first: the tab nodes' documents link to them.
  showApps(apps);
  showState(state);
  applyGraph(graph);
  showDocs(docs);
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
            const hello = JSON.parse(data);
            $('records').textContent = String(hello.total);
            // The latest records as they stand (on a reconnect too), newest first; new ones follow.
            log.splice(0, log.length, ...(hello.latest ?? []).map((record) => record.text).reverse());
            fill($('log'), log, (text) => text, 'none yet');
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
