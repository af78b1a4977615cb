// Class dashboard charts (see tutor/dashboards): draws from the page's JSON endpoints.
// Everything from the server is inserted as text (never as HTML): names come from users.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from 'chart.js';

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);

const PALETTE = ['#1d4ed8', '#c2410c', '#15803d', '#7e22ce', '#b91c1c', '#0e7490', '#a16207', '#be185d'];
const LOW = 0.4;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(key, value);
  }
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function percent(value) {
  return value === null || value === undefined ? '–' : `${Math.round(value * 100)}%`;
}

function duration(seconds) {
  if (!seconds) return '0 min';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

function textColour() {
  return getComputedStyle(document.body).color || '#1b2130';
}

// Red (low) through amber to green (high), readable with dark text.
function heat(mastery) {
  const hue = Math.round(Math.max(0, Math.min(1, mastery)) * 120);
  return `hsl(${hue} 70% 78%)`;
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function renderAttention(summary) {
  const list = document.getElementById('needs-attention');
  list.replaceChildren();
  for (const entry of summary.needs_attention) {
    const item = el('li', { class: 'attention-item', 'data-student-id': entry.student_id });
    item.append(el('strong', {}, entry.name));
    const reasons = el('ul', { class: 'attention-reasons' });
    for (const reason of entry.reasons) {
      const line = el('li', { class: `reason reason--${reason.kind}`, 'data-kind': reason.kind }, reason.text);
      if (reason.review_url) {
        line.append(' · ');
        line.append(el('a', { href: reason.review_url, class: 'review-link' }, 'review the session'));
      }
      reasons.append(line);
    }
    item.append(reasons);
    list.append(item);
  }
  document.getElementById('attention-empty').hidden = summary.needs_attention.length > 0;
}

function renderTable(summary) {
  const table = document.getElementById('student-table');
  const skills = summary.skills.map((s) => s.skill);
  const head = el('tr');
  for (const title of ['Student', 'Attempts', 'Solve rate', 'Time on task', 'Hints']) {
    head.append(el('th', { scope: 'col' }, title));
  }
  for (const skill of skills) head.append(el('th', { scope: 'col', class: 'skill-col' }, skill));
  table.tHead.replaceChildren(head);

  const body = table.tBodies[0];
  body.replaceChildren();
  for (const student of summary.students) {
    const row = el('tr', {
      'data-student-id': student.id,
      class: student.needs_attention ? 'needs-attention' : null,
    });
    row.append(el('th', { scope: 'row' }, student.name));
    row.append(el('td', { class: 'num' }, student.attempts));
    row.append(el('td', { class: 'num' }, percent(student.solve_rate)));
    row.append(el('td', { class: 'num' }, duration(student.time_on_task_s)));
    row.append(el('td', { class: 'num' }, student.hints));
    for (const skill of skills) {
      const cell = student.skills[skill];
      if (!cell || cell.mastery === null) {
        row.append(el('td', { class: 'heat heat--none', title: 'no attempts yet' }, '–'));
        continue;
      }
      const td = el('td', {
        class: 'heat',
        'data-mastery': cell.mastery,
        title: `${skill}: mastery ${cell.mastery.toFixed(2)}, ${cell.attempts} attempts, solve rate ${percent(cell.solve_rate)}`,
      }, cell.mastery.toFixed(2));
      td.style.background = heat(cell.mastery);
      td.style.color = '#1b2130';
      row.append(td);
    }
    body.append(row);
  }
}

function masteryChart(canvas, mastery) {
  const dates = [...new Set(mastery.skills.flatMap((s) => mastery.series[s].map((p) => p.date)))].sort();
  const datasets = mastery.skills.map((skill, index) => {
    const byDate = new Map(mastery.series[skill].map((p) => [p.date, p.mastery]));
    return {
      label: skill,
      data: dates.map((d) => (byDate.has(d) ? byDate.get(d) : null)),
      spanGaps: true,
      borderColor: PALETTE[index % PALETTE.length],
      backgroundColor: PALETTE[index % PALETTE.length],
      tension: 0.2,
    };
  });
  const colour = textColour();
  return new Chart(canvas, {
    type: 'line',
    data: { labels: dates, datasets },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: {
        y: { min: 0, max: 1, title: { display: true, text: 'P(mastered)', color: colour }, ticks: { color: colour } },
        x: { ticks: { color: colour } },
      },
      plugins: { legend: { labels: { color: colour } } },
    },
  });
}

function solveChart(canvas, summary) {
  const colour = textColour();
  return new Chart(canvas, {
    type: 'bar',
    data: {
      labels: summary.skills.map((s) => s.skill),
      datasets: [
        {
          label: 'Solve rate',
          data: summary.skills.map((s) => (s.solve_rate === null ? 0 : s.solve_rate)),
          backgroundColor: summary.skills.map((s) => (s.solve_rate !== null && s.solve_rate < LOW ? '#c2410c' : '#1d4ed8')),
        },
      ],
    },
    options: {
      maintainAspectRatio: false,
      animation: false,
      scales: {
        y: { min: 0, max: 1, ticks: { color: colour, callback: (v) => `${Math.round(v * 100)}%` } },
        x: { ticks: { color: colour } },
      },
      plugins: {
        legend: { display: false },
        tooltip: {
          callbacks: {
            label: (ctx) => {
              const s = summary.skills[ctx.dataIndex];
              return `${percent(s.solve_rate)} (${s.solved}/${s.sessions} sessions)`;
            },
          },
        },
      },
    },
  });
}

async function main() {
  const root = document.getElementById('dashboard');
  if (!root) return;
  const status = document.getElementById('dashboard-status');
  const charts = {};
  window.tutorDashboard = { charts, Chart };
  try {
    const [summary, mastery] = await Promise.all([
      getJSON(root.dataset.summaryUrl),
      getJSON(root.dataset.masteryUrl),
    ]);
    renderAttention(summary);
    renderTable(summary);
    charts.mastery = masteryChart(document.getElementById('mastery-chart'), mastery);
    charts.solve = solveChart(document.getElementById('solve-chart'), summary);
    const n = summary.students.length;
    status.textContent = `${n} student${n === 1 ? '' : 's'} · updated ${new Date(summary.generated_at).toLocaleString()}`;
    root.dataset.state = 'ready';
  } catch (error) {
    status.textContent = 'The dashboard could not be loaded. Reload the page to try again.';
    root.dataset.state = 'error';
    throw error;
  }
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', main);
} else {
  main();
}
