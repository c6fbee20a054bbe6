// The status page on the health port: one HTML file and one script, no build step, no framework.
// The script asks /status.json every second and redraws; every text goes in through textContent
// (device names and reasons come from configs and devices, never trusted as HTML). Served with a
// Content-Security-Policy that allows only this origin's own files.

export const STATUS_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgeferry</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2327; background: #f4f5f7; }
  header { background: #1d2327; color: #fff; padding: 10px 16px; display: flex; gap: 16px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; }
  main { padding: 12px 16px; }
  .cards { display: flex; gap: 12px; flex-wrap: wrap; margin-bottom: 12px; }
  .card { background: #fff; border-radius: 6px; padding: 8px 12px; min-width: 180px; box-shadow: 0 1px 2px #0002; }
  .card h2 { font-size: 12px; text-transform: uppercase; color: #666; margin: 0 0 4px; }
  .big { font-size: 18px; font-weight: 600; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e3e5e8; vertical-align: top; }
  th { font-size: 12px; color: #666; }
  .state { font-weight: 600; padding: 1px 6px; border-radius: 4px; }
  .up, .ok, .connected, .serving { background: #d7f5dd; color: #0b5d1e; }
  .degraded, .connecting, .starting { background: #fff0c2; color: #6b4e00; }
  .down, .failing, .disconnected, .error, .unknown { background: #ffd9d6; color: #8a1c12; }
  .disabled { background: #e3e5e8; color: #444; }
  .reason { color: #8a1c12; }
  .values { font-family: ui-monospace, monospace; font-size: 12px; }
  .bad { color: #8a1c12; }
  #stale { display: none; background: #ffd9d6; color: #8a1c12; padding: 6px 16px; }
</style>
</head>
<body>
<header><h1 id="title">edgeferry</h1><span id="overall" class="state">…</span><span id="updated"></span></header>
<div id="stale">No answer from the gateway: the figures below are from the last successful update.</div>
<main>
  <div class="cards">
    <div class="card"><h2>Health</h2><div id="health" class="big">…</div><div id="reasons" class="reason"></div></div>
    <div class="card"><h2>Broker</h2><div id="mqtt" class="big">…</div><div id="mqtt-detail"></div></div>
    <div class="card"><h2>Buffer</h2><div id="buffer" class="big">…</div><div id="buffer-detail"></div></div>
    <div class="card" id="outputs-card" hidden><h2>Outputs</h2><div id="outputs"></div></div>
    <div class="card" id="el-card" hidden><h2>EL inspection</h2><div id="el" class="big">…</div><div id="el-detail"></div></div>
  </div>
  <table>
    <thead><tr><th>Device</th><th>State</th><th>Since</th><th>Round trip</th><th>Channel</th><th>Last error</th><th>Latest values</th></tr></thead>
    <tbody id="devices"></tbody>
  </table>
</main>
<script src="status.js"></script>
</body>
</html>
`;

export const STATUS_JS = `'use strict';
const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined && text !== null) e.textContent = String(text); if (cls) e.className = cls; return e; };
const state = (s) => el('span', s, 'state ' + s);
const ago = (iso) => { if (!iso) return ''; const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000)); return s < 90 ? s + ' s ago' : s < 5400 ? Math.round(s / 60) + ' min ago' : Math.round(s / 3600) + ' h ago'; };
const bytes = (b) => b < 1048576 ? (b / 1024).toFixed(0) + ' KiB' : (b / 1048576).toFixed(1) + ' MiB';
const show = (v) => v === null ? 'null' : typeof v === 'number' ? String(Math.round(v * 1000) / 1000) : String(v);

function render(s) {
  document.title = 'edgeferry ' + s.site + '/' + s.gateway;
  $('title').textContent = 'edgeferry ' + s.site + '/' + s.gateway;
  const h = s.health;
  const overall = h.ok ? 'ok' : 'failing';
  $('overall').replaceWith(Object.assign(state(overall), { id: 'overall' }));
  $('health').replaceChildren(state(h.ok ? (h.health === 'up' ? 'up' : 'degraded') : 'failing'));
  const reasons = [...h.reasons, ...Object.entries(h.degraded || {}).map(([k, v]) => k + ': ' + v)];
  $('reasons').replaceChildren(...reasons.map((r) => el('div', r)));
  $('mqtt').replaceChildren(state(h.mqtt.state));
  $('mqtt-detail').textContent = h.mqtt.state === 'connected' ? '' : 'away for ' + h.mqtt.away_s + ' s: buffering';
  const b = h.buffer;
  $('buffer').textContent = b.depth + ' waiting';
  $('buffer-detail').textContent = bytes(b.bytes) + ' of ' + bytes(b.max_bytes) + ' (' + (b.fill * 100).toFixed(1) + '%)' + (b.oldest_age_s ? ', oldest ' + b.oldest_age_s + ' s' : '') + (b.evicted ? ', ' + b.evicted + ' evicted' : '') + (b.state !== 'ok' ? ', ' + b.state : '');
  const outs = Object.entries(h.outputs || {});
  $('outputs-card').hidden = outs.length < 2;
  $('outputs').replaceChildren(
    ...outs.map(([name, o]) =>
      el('div', name + ': ' + o.state + (o.backlog ? ', ' + o.backlog + ' behind (' + o.lag_s + ' s)' : ', all delivered') + (o.reason ? ' — ' + o.reason : '')),
    ),
  );
  if (s.el) {
    $('el-card').hidden = false;
    $('el').replaceChildren(state(s.el.state || 'starting'));
    const m = s.el.model;
    $('el-detail').textContent = (m ? m.name + ' ' + m.version : 'no model') + ', ' + s.el.queued + ' queued' + (s.el.model_error ? '; ' + s.el.model_error : '');
  }
  const rows = s.devices.map((d) => {
    const tr = el('tr');
    tr.dataset.device = d.name;
    tr.append(el('td', d.name));
    const st = el('td'); st.append(state(d.state)); tr.append(st);
    tr.append(el('td', ago(d.since)));
    tr.append(el('td', d.rtt_ms && d.rtt_ms.p50 !== null ? d.rtt_ms.p50 + ' / ' + d.rtt_ms.p99 + ' ms' : ''));
    tr.append(el('td', d.channel));
    tr.append(el('td', d.reason, 'reason'));
    const vals = el('td', undefined, 'values');
    for (const v of d.values) vals.append(el('div', v.point + ' = ' + show(v.value) + (v.quality !== 'good' ? ' (' + v.quality + (v.reason ? ': ' + v.reason : '') + ')' : ''), v.quality === 'good' ? '' : 'bad'));
    if (d.points > d.values.length) vals.append(el('div', '… and ' + (d.points - d.values.length) + ' more'));
    tr.append(vals);
    return tr;
  });
  $('devices').replaceChildren(...rows);
  $('updated').textContent = 'updated ' + new Date(s.ts).toLocaleTimeString();
}

async function tick() {
  try {
    const r = await fetch('status.json', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    render(await r.json());
    $('stale').style.display = 'none';
  } catch {
    $('stale').style.display = 'block';
  }
  setTimeout(tick, 1000);
}
tick();
`;
