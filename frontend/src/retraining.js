// Retraining pages (see tutor/retraining): a job's live progress and curves, evaluation
// progress bars, and the solve gain / leak rate trade-off across model versions.
// Everything from the server is inserted as text (never as HTML).
import {
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  ScatterController,
  Tooltip,
} from 'chart.js';

Chart.register(Legend, LinearScale, LineController, LineElement, PointElement, ScatterController, Tooltip);

const POLL_MS = 2000;
const PALETTE = ['#1d4ed8', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490', '#a16207', '#be185d'];
const CURVES = {
  reward_mean: { label: 'mean reward', colour: '#1d4ed8' },
  solve_rate: { label: 'solve rate', colour: '#15803d', unit: true },
  leak_rate: { label: 'leak rate', colour: '#b91c1c', unit: true },
  kl: { label: 'KL', colour: '#7e22ce' },
};

function textColour() {
  return getComputedStyle(document.body).color || '#1b2130';
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function fmt(value, digits = 3) {
  return value === null || value === undefined ? '–' : Number(value).toFixed(digits);
}

// ---- a training job ---------------------------------------------------------------------------

function curveChart(canvas, name) {
  const curve = CURVES[name];
  const colour = textColour();
  return new Chart(canvas, {
    type: 'line',
    data: { datasets: [{ label: curve.label, data: [], borderColor: curve.colour, backgroundColor: curve.colour, pointRadius: 2, tension: 0.15 }] },
    options: {
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      scales: {
        x: { type: 'linear', title: { display: true, text: 'step', color: colour }, ticks: { color: colour, precision: 0 } },
        y: { ticks: { color: colour }, ...(curve.unit ? { min: 0, max: 1 } : {}) },
      },
      plugins: { legend: { display: false } },
    },
  });
}

function formatAccuracy(value) {
  return typeof value === 'number' ? value.toFixed(3) : 'n/a';
}

// The reward model's retraining, a stage before the first step.
function renderStage(stage) {
  const row = document.getElementById('job-stage-reward_model');
  if (!row || !stage) return;
  row.hidden = false;
  const bar = document.getElementById('rm-progress');
  bar.max = Math.max(stage.total || 0, 1);
  bar.value = stage.done || 0;
  document.getElementById('rm-status').textContent = stage.status === 'running'
    ? `retraining: step ${stage.done || 0} of ${stage.total || 0}`
    : stage.status;
  const parts = [];
  if (typeof stage.accuracy_after === 'number') {
    parts.push(`held-out pairwise accuracy ${formatAccuracy(stage.accuracy_before)} → ${formatAccuracy(stage.accuracy_after)} on ${stage.held_out_pairs} pairs (${stage.train_pairs} trained on)`);
  }
  if (stage.reason) parts.push(stage.reason);
  document.getElementById('rm-figures').textContent = parts.join(' · ');
}

function renderJob(root, charts, data) {
  root.dataset.state = data.status;
  document.getElementById('job-status').textContent = data.status_display;
  document.getElementById('job-status').className = `badge badge--job-${data.status}`;
  const bar = document.getElementById('job-progress');
  bar.value = data.percent;
  document.getElementById('job-step').textContent = `step ${data.step} of ${data.total_steps} (${data.percent}%)`;
  const note = document.getElementById('job-note');
  if (data.status === 'queued') note.textContent = 'Waiting for a worker on the training queue.';
  else if (data.stale) note.textContent = `No heartbeat for ${Math.round(data.heartbeat_age_s)} s: the worker may be gone; the job resumes when its task is delivered again.`;
  else if (data.cancel_requested && !data.finished) note.textContent = 'Stopping after the current step…';
  else note.textContent = '';
  const error = document.getElementById('job-error');
  error.hidden = !data.error;
  error.textContent = data.error || '';
  if (data.result_version) {
    const result = document.getElementById('job-result');
    const link = document.createElement('a');
    link.href = data.result_version.url;
    link.textContent = data.result_version.name;
    result.replaceChildren('New version: ', link);
    result.hidden = false;
  }
  document.getElementById('job-attempts').textContent = String(data.attempts);
  document.getElementById('job-checkpoint').textContent = data.checkpoint || '–';
  if (data.dataset && data.dataset.problems !== undefined) {
    document.getElementById('job-dataset').textContent = `${data.dataset.problems} problems, ${data.dataset.ratings} ratings, ${data.dataset.outcomes} outcomes`;
  }
  renderStage(data.stages && data.stages.reward_model);
  const log = document.getElementById('job-log');
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 8;
  // Compared with what is shown (notice included), so an unchanged log is left alone: a
  // rewrite every poll would drop the admin's selection.
  const text = (data.log_truncated ? '[… earlier lines on the server]\n' : '') + data.log;
  if (log.textContent !== text) {
    log.textContent = text;
    if (atBottom) log.scrollTop = log.scrollHeight;
  }
  for (const [name, chart] of Object.entries(charts)) {
    chart.data.datasets[0].data = data.history
      .filter((h) => h[name] !== undefined && h[name] !== null)
      .map((h) => ({ x: h.step, y: h[name] }));
    chart.update();
  }
  const cancel = document.querySelector('#cancel-form button');
  if (cancel) cancel.disabled = data.finished || data.cancel_requested;
}

async function jobPage(root) {
  const charts = {};
  for (const name of Object.keys(CURVES)) {
    const canvas = document.getElementById(`chart-${name}`);
    if (canvas) charts[name] = curveChart(canvas, name);
  }
  window.tutorRetraining = { charts, Chart };
  const initial = JSON.parse(document.getElementById('job-initial').textContent);
  renderJob(root, charts, initial);
  let finished = initial.finished;
  while (!finished) {
    await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
    try {
      const data = await getJSON(root.dataset.progressUrl);
      renderJob(root, charts, data);
      finished = data.finished;
    } catch (error) {
      document.getElementById('job-note').textContent = 'Lost contact with the server; retrying…';
    }
  }
}

// ---- evaluation runs --------------------------------------------------------------------------

async function followEval(item) {
  const status = item.querySelector('[data-role="status"]');
  const bar = item.querySelector('[data-role="bar"]');
  const detail = item.querySelector('[data-role="detail"]');
  for (;;) {
    await new Promise((resolve) => { setTimeout(resolve, POLL_MS); });
    let data;
    try {
      data = await getJSON(item.dataset.progressUrl);
    } catch (error) {
      continue;
    }
    status.textContent = data.status_display;
    status.className = `badge badge--job-${data.status}`;
    bar.value = data.percent;
    detail.textContent = `${data.done}/${data.total} ${data.task || ''}${data.error ? ` · ${data.error}` : ''}`;
    if (data.finished) {
      item.dataset.finished = '1';
      if (data.status === 'succeeded') detail.textContent += ' · reload the page for the figures';
      return;
    }
  }
}

// ---- the trade-off chart ----------------------------------------------------------------------

// Draws each point's confidence intervals as whiskers in both directions.
const errorBars = {
  id: 'errorBars',
  afterDatasetsDraw(chart) {
    const { ctx, scales: { x, y } } = chart;
    ctx.save();
    chart.data.datasets.forEach((dataset, index) => {
      const meta = chart.getDatasetMeta(index);
      if (meta.hidden) return;
      ctx.strokeStyle = dataset.borderColor;
      ctx.lineWidth = 1.2;
      dataset.data.forEach((point) => {
        const cx = x.getPixelForValue(point.x);
        const cy = y.getPixelForValue(point.y);
        const line = (x0, y0, x1, y1) => { ctx.beginPath(); ctx.moveTo(x0, y0); ctx.lineTo(x1, y1); ctx.stroke(); };
        if (point.xLow !== null && point.xHigh !== null) {
          const a = x.getPixelForValue(point.xLow);
          const b = x.getPixelForValue(point.xHigh);
          line(a, cy, b, cy); line(a, cy - 3, a, cy + 3); line(b, cy - 3, b, cy + 3);
        }
        if (point.yLow !== null && point.yHigh !== null) {
          const a = y.getPixelForValue(point.yLow);
          const b = y.getPixelForValue(point.yHigh);
          line(cx, a, cx, b); line(cx - 3, a, cx + 3, a); line(cx - 3, b, cx + 3, b);
        }
      });
    });
    ctx.restore();
  },
};

function tradeoffPoints(versions) {
  return versions
    .filter((v) => v.headline.solve_gain && v.headline.leak_rate
      && v.headline.solve_gain.value !== null && v.headline.leak_rate.value !== null)
    .map((v) => ({
      name: v.name,
      status: v.status,
      lambda: v.lambda,
      x: v.headline.leak_rate.value,
      y: v.headline.solve_gain.value,
      xLow: v.headline.leak_rate.ci_low ?? null,
      xHigh: v.headline.leak_rate.ci_high ?? null,
      yLow: v.headline.solve_gain.ci_low ?? null,
      yHigh: v.headline.solve_gain.ci_high ?? null,
    }));
}

// An axis range that holds every point and whisker, with a margin.
function extent(points, keys) {
  const values = points.flatMap((p) => keys.map((k) => p[k])).filter((v) => v !== null && v !== undefined);
  if (!values.length) return {};
  let low = Math.min(...values);
  let high = Math.max(...values);
  const pad = Math.max((high - low) * 0.08, 0.01);
  low -= pad;
  high += pad;
  return { min: Number(low.toFixed(3)), max: Number(high.toFixed(3)) };
}

async function versionsPage(root) {
  const data = await getJSON(root.dataset.versionsUrl);
  const points = tradeoffPoints(data.versions);
  const canvas = document.getElementById('tradeoff-chart');
  document.getElementById('tradeoff-empty').hidden = points.length > 0;
  const colour = textColour();
  const datasets = points.map((p, index) => ({
    label: p.name + (p.status === 'active' ? ' (active)' : ''),
    data: [p],
    borderColor: PALETTE[index % PALETTE.length],
    backgroundColor: PALETTE[index % PALETTE.length],
    pointRadius: p.status === 'active' ? 7 : 5,
    pointStyle: p.status === 'active' ? 'rectRot' : 'circle',
  }));
  const chart = new Chart(canvas, {
    type: 'scatter',
    data: { datasets },
    plugins: [errorBars],
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { title: { display: true, text: 'leak rate (lower is better)', color: colour }, ticks: { color: colour }, ...extent(points, ['x', 'xLow', 'xHigh']) },
        y: { title: { display: true, text: 'solve gain (higher is better)', color: colour }, ticks: { color: colour }, ...extent(points, ['y', 'yLow', 'yHigh']) },
      },
      plugins: {
        legend: { labels: { color: colour } },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const p = ctx.raw;
              const lambda = p.lambda === null || p.lambda === undefined ? '' : `, λ=${p.lambda}`;
              return `${p.name}${lambda}: leak ${fmt(p.x)} [${fmt(p.xLow)}, ${fmt(p.xHigh)}], gain ${fmt(p.y)} [${fmt(p.yLow)}, ${fmt(p.yHigh)}]`;
            },
          },
        },
      },
    },
  });
  window.tutorRetraining = { charts: { tradeoff: chart }, Chart, points };
  root.dataset.state = 'ready';
}

function main() {
  const job = document.getElementById('job');
  if (job) jobPage(job);
  const versions = document.getElementById('versions');
  if (versions) versionsPage(versions).catch((error) => { versions.dataset.state = 'error'; throw error; });
  for (const item of document.querySelectorAll('.eval-run[data-finished="0"]')) followEval(item);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', main);
} else {
  main();
}
