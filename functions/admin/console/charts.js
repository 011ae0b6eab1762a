// Line charts (uPlot) with one look for every view: a time axis, a y axis from zero in the
// figure's own format, sized to their box and following its width. `update(data)` feeds a chart
// new data in place (the live panel); `destroy()` stops it.

import { h } from './dom.js';

const AXIS = { stroke: '#64748b', grid: { stroke: '#eef0f4', width: 1 }, ticks: { stroke: '#e2e8f0', width: 1 } };

/** Whole-number steps (requests, micro-USD, tokens): 1, 2, 5, 10, 20, 50… */
export const WHOLE_STEPS = Array.from({ length: 13 }, (_, e) => [1, 2, 5].map((m) => m * 10 ** e)).flat();
/** Day steps of a daily axis. */
export const DAY_STEPS = [86400, 2 * 86400, 7 * 86400, 14 * 86400];

/**
 * A chart in `box`. `x`: { label, format(secs), steps? }; `y`: { format(value), steps? };
 * `lines`: [{ label, color, fill? }]; `data`: [xs (unix seconds), ...one array per line].
 */
export function lineChart(box, { height, x, y, lines, data }) {
  const plotBox = h('div', { class: 'chart-plot' });
  box.append(plotBox);
  const width = () => Math.max(plotBox.clientWidth, 200);
  const plot = new window.uPlot({
    width: width(),
    height,
    cursor: { points: { size: 6 }, drag: { x: false, y: false } },
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.15 : 1] } },
    axes: [
      { ...AXIS, space: 56, incrs: x.steps, values: (u, splits) => splits.map(x.format) },
      {
        ...AXIS, incrs: y.steps, values: (u, splits) => splits.map(y.format),
        size: (u, labels) => {
          u.ctx.font = '12px system-ui, sans-serif';
          return Math.ceil(Math.max(0, ...(labels || []).map((l) => u.ctx.measureText(l).width))) + 18;
        },
      },
    ],
    series: [
      { label: x.label, value: (u, v) => (v === null ? '—' : x.format(v)) },
      ...lines.map((line) => ({
        label: line.label, stroke: line.color, fill: line.fill ? `${line.color}14` : undefined, width: 2, points: { size: 6 },
        value: (u, v) => (v === null || v === undefined ? '—' : y.format(v)),
      })),
    ],
  }, data, plotBox);
  let drawn = width();
  const resize = new ResizeObserver(() => {
    // Only on a real width change, so resizing the plot never feeds back into the observer.
    if (width() !== drawn) plot.setSize({ width: (drawn = width()), height });
  });
  resize.observe(plotBox);
  return {
    update: (next) => plot.setData(next),
    destroy: () => { resize.disconnect(); plot.destroy(); },
  };
}
