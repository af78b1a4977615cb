// Teacher pages (loaded by base.html for teachers and admins), bundled into /static/tutor/teacher.js:
//   - live flag notifications over /ws/teacher/ (tutor/reviews/consumers.py): a toast for each
//     high-severity flag, linking to the review page, and the open-flag count in the top bar;
//   - on the review page (#review): Markdown + KaTeX rendering of the transcript (same sanitising
//     pipeline as the chat) and the per-turn rating forms, saved with fetch (no page reload).
// Everything from the server goes into the DOM as text or through render.js (DOMPurify).

import { renderInto } from './render.js';

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 15000;
const PING_INTERVAL_MS = 25000;
const TOAST_LIMIT = 5;
const RUBRIC_FIELDS = ['helpful', 'no_answer_reveal', 'correct', 'encourages_thinking'];

// ---- helpers -----------------------------------------------------------------------------------

function csrfToken() {
  const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
  if (input && input.value) return input.value;
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : '';
}

function el(tag, attrs = {}, text = '') {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text) node.textContent = text;
  return node;
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json',
      'X-CSRFToken': csrfToken(),
    },
    body: JSON.stringify(body || {}),
  });
  let data;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.error ? data.error : `The server answered ${response.status}.`;
    throw new Error(detail);
  }
  return data;
}

// ---- open-flag count and live notifications -----------------------------------------------------

const seenFlags = new Set();
let openFlags = null;

function showCount() {
  const badge = document.getElementById('flag-count');
  if (!badge || openFlags === null) return;
  badge.textContent = String(openFlags);
  badge.hidden = openFlags <= 0;
  badge.dataset.count = String(openFlags);
}

function toastContainer() {
  let box = document.getElementById('flag-toasts');
  if (!box) {
    box = el('div', { id: 'flag-toasts', class: 'toasts', 'aria-live': 'assertive' });
    document.body.append(box);
  }
  return box;
}

function describe(flag) {
  const what = flag.category ? `${flag.kind_display} (${flag.category})` : flag.kind_display;
  return `${what} · ${flag.student} · ${flag.problem}`;
}

function showToast(flag) {
  const box = toastContainer();
  const toast = el('div', {
    class: `toast toast--${flag.severity}`,
    role: 'alert',
    'data-flag-id': String(flag.id),
  });
  const title = el('strong', { class: 'toast__title' }, `${flag.severity === 'high' ? 'High-severity' : 'New'} flag: `);
  const text = el('span', { class: 'toast__text' }, describe(flag));
  const link = el('a', { class: 'toast__link', href: `${flag.review_url}${flag.message_id ? `#message-${flag.message_id}` : ''}` }, 'Review');
  const close = el('button', { type: 'button', class: 'toast__close link', 'aria-label': 'Dismiss' }, 'Dismiss');
  close.addEventListener('click', () => toast.remove());
  toast.append(title, text, ' ', link, ' ', close);
  box.prepend(toast);
  while (box.children.length > TOAST_LIMIT) box.lastElementChild.remove();
}

function onFlag(flag) {
  if (!flag || seenFlags.has(flag.id)) return; // a superuser teacher is in two groups
  seenFlags.add(flag.id);
  if (openFlags !== null && !flag.resolved) {
    openFlags += 1;
    showCount();
  }
  showToast(flag);
  document.dispatchEvent(new CustomEvent('tutor:flag', { detail: flag }));
}

function connectFlags() {
  const box = document.getElementById('flag-toasts');
  const path = (box && box.dataset.wsPath) || '/ws/teacher/';
  const scheme = window.location.protocol === 'https:' ? 'wss' : 'ws';
  let delay = RECONNECT_MIN_MS;
  let pingTimer = null;
  const state = { socket: null, stopped: false };

  const open = () => {
    const socket = new WebSocket(`${scheme}://${window.location.host}${path}`);
    state.socket = socket;
    document.body.dataset.flagSocket = 'connecting';
    socket.addEventListener('open', () => {
      delay = RECONNECT_MIN_MS;
      pingTimer = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send('{"type":"ping"}');
      }, PING_INTERVAL_MS);
    });
    socket.addEventListener('message', (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === 'hello') {
        openFlags = Number(frame.open_flags) || 0;
        showCount();
        document.body.dataset.flagSocket = 'connected';
      } else if (frame.type === 'flag') {
        onFlag(frame.flag);
      } else if (frame.type === 'error') {
        state.stopped = true; // refused (not a teacher): do not retry
      }
    });
    socket.addEventListener('close', (event) => {
      clearInterval(pingTimer);
      document.body.dataset.flagSocket = 'closed';
      if (state.stopped || (event.code >= 4400 && event.code < 4500)) return;
      setTimeout(open, delay);
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    });
  };
  open();
  return state;
}

// ---- the review page ----------------------------------------------------------------------------

function renderMarkdownBlocks(root) {
  for (const node of root.querySelectorAll('[data-markdown]')) {
    renderInto(node, node.textContent.trim());
  }
}

function formValues(form) {
  const values = {};
  for (const field of RUBRIC_FIELDS) {
    const value = form.elements[field].value;
    values[field] = value === '' ? null : Number(value);
  }
  values.teacher_move = form.elements.teacher_move.value;
  values.comment = form.elements.comment.value;
  return values;
}

function setStatus(form, text, state) {
  const status = form.querySelector('.rating-status');
  status.textContent = text;
  status.dataset.state = state;
}

function markGaveAway(form, rating) {
  const button = form.querySelector('.gave-away');
  button.disabled = true;
  button.textContent = 'Marked: gave the answer away';
  if (rating && rating.no_answer_reveal != null) {
    form.elements.no_answer_reveal.value = String(rating.no_answer_reveal);
  }
  const item = form.closest('.review-message');
  if (item && !item.classList.contains('review-message--leak')) {
    item.classList.add('review-message--leak');
    const meta = item.querySelector('.review-message__meta');
    if (meta) meta.append(' ', el('span', { class: 'badge badge--leak' }, 'answer leak'));
  }
}

function setUpRatingForm(form) {
  let saving = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (saving) return;
    saving = true;
    setStatus(form, 'Saving…', 'saving');
    try {
      await postJson(form.dataset.rateUrl, formValues(form));
      setStatus(form, 'Saved', 'saved');
    } catch (error) {
      setStatus(form, `Not saved: ${error.message}`, 'error');
    } finally {
      saving = false;
    }
  });
  form.addEventListener('change', () => setStatus(form, 'Unsaved changes', 'dirty'));
  form.querySelector('.gave-away').addEventListener('click', async () => {
    setStatus(form, 'Saving…', 'saving');
    try {
      const data = await postJson(form.dataset.gaveAwayUrl, {});
      markGaveAway(form, data.rating);
      setStatus(form, 'Saved: marked as giving the answer away', 'saved');
    } catch (error) {
      setStatus(form, `Not saved: ${error.message}`, 'error');
    }
  });
}

function setUpReview(root) {
  renderMarkdownBlocks(root);
  for (const form of root.querySelectorAll('.rating-form')) setUpRatingForm(form);
  root.dataset.ready = 'true';
}

// ---- start ------------------------------------------------------------------------------------

function start() {
  const review = document.getElementById('review');
  if (review) setUpReview(review);
  if ('WebSocket' in window) connectFlags();
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start);
} else {
  start();
}
