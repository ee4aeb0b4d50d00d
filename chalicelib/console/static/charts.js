// Charts drawn by uPlot (vendored, vendor/VERSIONS.txt), each with its numbers as a table too:
// a screen reader, or anyone who would rather read, gets the same data.
import { h, clear, table } from './dom.js';

const COLORS = { total: '#1f5fa8', applied: '#1b7f3b', failed: '#b3261e', rate: '#6b3fa0', count: '#1f5fa8' };

function chartFigure(title, headers, rows) {
  const plot = h('div', { class: 'plot', role: 'img', 'aria-label': title });
  const data = table(headers);
  for (const r of rows) data.tbody.append(h('tr', {}, r.map((c) => h('td', {}, String(c)))));
  return { figure: h('figure', { class: 'chart' }, h('figcaption', {}, title), plot, h('details', {}, h('summary', {}, 'Numbers'), data.el)), plot };
}

/** A time axis that stays readable with a single day: a day either side of it. (uPlot's own range for
 * one point is not called with min === max: it widens the axis to years, so the range is fixed here.) */
function dayScale(xs) {
  if (xs.length >= 2) return { time: true };
  const day = xs.length ? xs[0] : Math.floor(Date.now() / 86400000) * 86400;
  return { time: true, auto: false, range: () => [day - 86400, day + 86400] };
}

function draw(plot, options, data) {
  if (!window.uPlot) { plot.append(h('p', { class: 'muted' }, 'Chart library not loaded.')); return null; }
  return new window.uPlot({ width: 520, height: 200, legend: { show: true }, ...options }, data, plot);
}

/** Per day: total, applied and failed as lines over time. */
export function daily(container, days) {
  const { figure, plot } = chartFigure('Patch operations per day', ['Day', 'Total', 'Applied', 'Failed'],
    days.map((d) => [d.date, d.total, d.applied, d.failed]));
  container.append(figure);
  const xs = days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000);
  const points = { show: true, size: 7 };
  draw(plot, { scales: { x: dayScale(xs) }, series: [{}, { label: 'total', stroke: COLORS.total, points },
    { label: 'applied', stroke: COLORS.applied, points }, { label: 'failed', stroke: COLORS.failed, dash: [6, 4], points }],
  axes: [{}, { label: 'operations' }] },
  [xs, days.map((d) => d.total), days.map((d) => d.applied), days.map((d) => d.failed)]);
}

/** Error rate per day, in percent. */
export function errorRate(container, days) {
  const rates = days.map((d) => (d.total ? Math.round((1000 * d.failed) / d.total) / 10 : 0));
  const { figure, plot } = chartFigure('Error rate per day (%)', ['Day', 'Failed %'], days.map((d, i) => [d.date, rates[i]]));
  container.append(figure);
  const xs = days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000);
  draw(plot, { series: [{}, { label: 'error rate %', stroke: COLORS.failed, fill: 'rgba(179,38,30,0.12)', points: { show: true, size: 7 } }],
    scales: { x: dayScale(xs), y: { range: [0, 100] } }, axes: [{}, { label: '%' }] },
  [xs, rates]);
}

/** Categories (factories, operation kinds) as bars; the x axis names them. */
export function bars(container, title, labels, values, unit, color = COLORS.count, percent = false) {
  const { figure, plot } = chartFigure(title, ['Name', unit], labels.map((l, i) => [l, values[i]]));
  container.append(figure);
  if (!labels.length) { plot.append(h('p', { class: 'muted' }, 'No data yet.')); return; }
  const uPlot = window.uPlot;
  draw(plot, {
    scales: { x: { time: false, range: [-0.5, labels.length - 0.5] }, ...(percent ? { y: { range: [0, 100] } } : {}) },
    series: [{ value: (u, i) => (i == null ? '' : labels[i] ?? '') },
      { label: unit, stroke: color, fill: color, paths: uPlot?.paths?.bars ? uPlot.paths.bars({ size: [0.6, 60] }) : undefined, points: { show: false } }],
    axes: [{ values: (u, splits) => splits.map((i) => labels[i] ?? ''), splits: () => labels.map((_, i) => i) }, { label: unit }],
  }, [labels.map((_, i) => i), values]);
}

export function clearCharts(container) { clear(container); }
