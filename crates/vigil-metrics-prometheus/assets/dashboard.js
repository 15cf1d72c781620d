// Vigil's live dashboard. Polls dashboard/data and draws one SVG line chart per chart the
// server describes: the metric names, titles, units and series all come from the server.
//
// For people and for tests, the page reports its state in the DOM: #charts[data-ready],
// each chart's data-state ("data" or "no-data") and data-points (points with a value),
// #status[data-state] ("live" or "offline"), and every script error in #errors (with
// body[data-errors] counting them).
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const WIDTH = 560;
const HEIGHT = 180;
const PAD = { left: 64, right: 10, top: 10, bottom: 22 };
const errors = [];

function reportError(text) {
  errors.push(String(text));
  const el = document.getElementById('errors');
  el.textContent = errors.join('\n');
  el.hidden = false;
  document.body.dataset.errors = String(errors.length);
}

window.addEventListener('error', (e) => reportError(`${e.message} (${e.filename}:${e.lineno})`));
window.addEventListener('unhandledrejection', (e) => reportError(`unhandled rejection: ${e.reason}`));
document.addEventListener('securitypolicyviolation', (e) =>
  reportError(`Content-Security-Policy blocked ${e.blockedURI || 'inline code'} (${e.violatedDirective})`));

function isValue(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

function format(v, unit) {
  if (!isValue(v)) return '–';
  if (unit === 'bytes') {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) {
      v /= 1024;
      i += 1;
    }
    return `${v.toFixed(i === 0 || Math.abs(v) >= 100 ? 0 : 1)} ${units[i]}`;
  }
  const a = Math.abs(v);
  const digits = a >= 100 || Number.isInteger(v) ? 0 : a >= 10 ? 1 : 2;
  return unit ? `${v.toFixed(digits)} ${unit}` : v.toFixed(digits);
}

// The smallest "round" number (1, 2, 2.5 or 5 times a power of ten, counted in KiB, MiB...
// for bytes) at or above max.
function niceMax(max, unit) {
  if (!(max > 0)) return 1;
  const base = unit === 'bytes' ? 1024 ** Math.min(4, Math.floor(Math.log(max) / Math.log(1024))) : 1;
  const scaled = max / base;
  const power = 10 ** Math.floor(Math.log10(scaled));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (m * power >= scaled) return m * power * base;
  }
  return 10 * power * base;
}

function svg(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function html(name, attrs, text) {
  const el = document.createElement(name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

// The chart's card, made on first use.
function card(chart) {
  const id = `chart-${chart.id}`;
  let el = document.getElementById(id);
  if (el) return el;
  el = html('section', { id, class: 'chart', 'data-state': 'no-data', 'data-points': 0 });
  el.append(
    html('h2', {}, chart.title),
    html('p', { class: 'metrics' }, chart.metrics.join(', ')),
    svg('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': chart.title }),
    html('ul', { class: 'legend' }),
  );
  document.getElementById('charts').append(el);
  return el;
}

function draw(chart, times, span) {
  const el = card(chart);
  const plot = el.querySelector('svg');
  const legend = el.querySelector('.legend');
  plot.replaceChildren();
  legend.replaceChildren();

  let max = 0;
  let points = 0;
  for (const s of chart.series) {
    const present = s.values.filter(isValue);
    points = Math.max(points, present.length);
    for (const v of present) max = Math.max(max, v);
  }
  el.dataset.points = String(points);
  el.dataset.state = points > 0 ? 'data' : 'no-data';

  const end = times.length ? times[times.length - 1] : Date.now();
  const start = end - span;
  const yMax = niceMax(max, chart.unit);
  const x = (t) => PAD.left + ((t - start) / span) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - v / yMax) * (HEIGHT - PAD.top - PAD.bottom);

  for (const f of [0, 0.5, 1]) {
    const gy = y(yMax * f);
    plot.append(svg('line', { class: 'grid', x1: PAD.left, x2: WIDTH - PAD.right, y1: gy, y2: gy }));
    if (points > 0) {
      const label = format(yMax * f, chart.unit);
      plot.append(svg('text', { class: 'axis', x: PAD.left - 6, y: gy + 4, 'text-anchor': 'end' }, label));
    }
  }
  const minutes = Math.round(span / 60000);
  const ago = minutes >= 1 ? `−${minutes} min` : `−${Math.round(span / 1000)} s`;
  plot.append(svg('text', { class: 'axis', x: PAD.left, y: HEIGHT - 6 }, ago));
  plot.append(svg('text', { class: 'axis', x: WIDTH - PAD.right, y: HEIGHT - 6, 'text-anchor': 'end' }, 'now'));

  if (points === 0) {
    plot.append(svg('text', { class: 'empty', x: WIDTH / 2, y: HEIGHT / 2, 'text-anchor': 'middle' }, 'no data'));
  }

  chart.series.forEach((s, i) => {
    // One path, broken where a point has no value; a dot on the latest value.
    let d = '';
    let pen = false;
    let last = null;
    s.values.forEach((v, j) => {
      if (!isValue(v)) {
        pen = false;
        return;
      }
      d += `${pen ? 'L' : 'M'}${x(times[j]).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
      last = [times[j], v];
    });
    if (d) plot.append(svg('path', { class: `line s${i}`, d }));
    if (last) plot.append(svg('circle', { class: `s${i}`, cx: x(last[0]), cy: y(last[1]), r: 2.5 }));
    const item = html('li', { class: `s${i}` }, `${s.name} `);
    item.append(html('b', {}, format(last ? last[1] : null, chart.unit)));
    legend.append(item);
  });
}

function render(data) {
  const span = Math.max(1, data.capacity - 1) * data.interval_ms;
  for (const chart of data.charts) draw(chart, data.t, span);
  document.getElementById('charts').dataset.ready = 'true';
}

async function poll() {
  const status = document.getElementById('status');
  let data;
  try {
    const response = await fetch('dashboard/data', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    data = await response.json();
  } catch (e) {
    status.textContent = `cannot reach the metrics port (${e.message}); retrying`;
    status.dataset.state = 'offline';
    return 1000;
  }
  render(data);
  status.textContent = `live · ${data.t.length} of ${data.capacity} points · updated ${new Date().toLocaleTimeString()}`;
  status.dataset.state = 'live';
  return Math.max(250, data.interval_ms);
}

function loop() {
  poll()
    .catch((e) => {
      reportError(e && e.stack ? e.stack : e);
      return 1000;
    })
    .then((delay) => setTimeout(loop, delay));
}

loop();
