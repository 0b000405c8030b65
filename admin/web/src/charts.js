// Charts of the last hour with uPlot: a history loaded once (GET /api/history), then a
// point appended for every figures event. The x axis is unix seconds.
import uPlot from './uPlot.esm.js';

const HOUR = 3600;
const palette = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2'];

export class LiveChart {
  // series: [{label, scale?}]; opts.title; opts.unit ('/s', 'ms', '')
  constructor(container, { title, series, unit = '' }) {
    this.box = document.createElement('figure');
    this.box.className = 'chart';
    const cap = document.createElement('figcaption');
    cap.textContent = title;
    this.box.append(cap);
    this.plotBox = document.createElement('div');
    this.plotBox.setAttribute('role', 'img');
    this.plotBox.setAttribute('aria-label', `${title}: chart of the last hour`);
    this.box.append(this.plotBox);
    container.append(this.box);
    this.title = title;
    this.series = series;
    this.data = [[], ...series.map(() => [])];
    const width = Math.max(260, this.plotBox.clientWidth || container.clientWidth || 600);
    this.plot = new uPlot({
      width,
      height: 180,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: { x: { time: true } },
      axes: [{}, { size: 56, values: (u, vals) => vals.map((v) => (v == null ? '' : fmtAxis(v) + unit)) }],
      series: [{}, ...series.map((s, i) => ({ label: s.label, stroke: palette[i % palette.length], width: 1.5, spanGaps: false }))],
    }, this.data, this.plotBox);
    this.resizer = new ResizeObserver(() => {
      const w = this.plotBox.clientWidth;
      if (w > 0 && Math.abs(w - this.plot.width) > 2) this.plot.setSize({ width: w, height: 180 });
    });
    this.resizer.observe(this.plotBox);
  }

  setData(t, cols) {
    this.data = [t.slice(), ...cols.map((c) => c.slice())];
    this.plot.setData(this.data);
  }

  push(t, values) {
    const xs = this.data[0];
    if (xs.length && t <= xs[xs.length - 1]) return;
    xs.push(t);
    values.forEach((v, i) => this.data[i + 1].push(v == null || Number.isNaN(v) ? null : v));
    while (xs.length && xs[0] < t - HOUR) this.data.forEach((col) => col.shift());
    this.plot.setData(this.data);
    const last = values.map((v, i) => `${this.series[i].label} ${v == null ? '–' : fmtAxis(v)}`).join(', ');
    this.plotBox.setAttribute('aria-label', `${this.title}, last hour; now: ${last}`);
  }

  destroy() {
    this.resizer.disconnect();
    this.plot.destroy();
  }
}

function fmtAxis(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
  if (a >= 100 || v === Math.round(v)) return String(Math.round(v));
  return v.toFixed(a >= 10 ? 1 : 2);
}
