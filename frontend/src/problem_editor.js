// Problem pages (tutor/problems): the editor's live preview and "try an answer" check, and the
// rendering of a problem's text on its read-only page. Bundled into /static/tutor/problem_editor.js.
//
// The preview goes through render.js, the chat's own pipeline (marked, KaTeX, DOMPurify), so a
// teacher sees exactly what students will see and nothing typed into the editor can run as
// script. Server replies are shown as text only.

import './problem_editor.css';
import { renderInto } from './render.js';

const PREVIEW_DELAY_MS = 120;
const CHECK_TIMEOUT_MS = 15000;

const FALLBACK_MESSAGES = {
  403: 'Your session has ended or your role cannot check answers. Reload the page and log in again.',
  413: 'The answer or the problem text is too long to check.',
  429: 'Too many checks in a short time. Wait a minute and try again.',
};

function renderMarkdownElements(root) {
  for (const node of root.querySelectorAll('[data-markdown]')) {
    renderInto(node, node.textContent);
  }
}

/** Re-render `target` from `source` shortly after each edit (one render per pause in typing). */
function livePreview(source, target) {
  if (!source || !target) return;
  let timer = null;
  const update = () => {
    timer = null;
    renderInto(target, source.value);
  };
  source.addEventListener('input', () => {
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(update, PREVIEW_DELAY_MS);
  });
  update();
}

function csrfToken(form) {
  const input = form.querySelector('input[name="csrfmiddlewaretoken"]');
  return input ? input.value : '';
}

function showResult(node, status, message) {
  node.dataset.status = status;
  node.textContent = message;
  node.hidden = false;
}

async function postCheck(url, form, answer) {
  const body = new URLSearchParams();
  body.set('answer', answer);
  body.set('final_answer', form.elements.final_answer ? form.elements.final_answer.value : '');
  body.set('text', form.elements.text ? form.elements.text.value : '');
  const simplest = form.elements.require_simplest_form;
  if (simplest && simplest.checked) body.set('require_simplest_form', 'on');
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), CHECK_TIMEOUT_MS);
  try {
    const response = await fetch(url, {
      method: 'POST',
      body,
      credentials: 'same-origin',
      headers: { 'X-CSRFToken': csrfToken(form), Accept: 'application/json' },
      signal: controller.signal,
    });
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (payload && typeof payload.message === 'string' && typeof payload.status === 'string') {
      return payload;
    }
    return {
      status: 'error',
      message: FALLBACK_MESSAGES[response.status] || `The check failed (HTTP ${response.status}). Try again.`,
    };
  } catch (error) {
    const aborted = error && error.name === 'AbortError';
    return {
      status: 'error',
      message: aborted ? 'The check took too long. Try again.' : 'The server could not be reached. Try again.',
    };
  } finally {
    clearTimeout(timer);
  }
}

function tryAnswer(form) {
  const box = document.getElementById('try-answer');
  if (!box) return;
  const input = document.getElementById('try-answer-input');
  const button = document.getElementById('try-answer-button');
  const result = document.getElementById('try-answer-result');
  const run = async () => {
    const answer = input.value.trim();
    if (!answer) {
      showResult(result, 'invalid', 'Type an answer to try.');
      return;
    }
    button.disabled = true;
    box.setAttribute('aria-busy', 'true');
    try {
      const reply = await postCheck(box.dataset.checkUrl, form, answer);
      showResult(result, reply.status, reply.message);
    } finally {
      button.disabled = false;
      box.removeAttribute('aria-busy');
    }
  };
  button.addEventListener('click', run);
  // Enter in the try box checks the answer; it must not submit the problem form.
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      run();
    }
  });
}

function init() {
  renderMarkdownElements(document);
  const form = document.getElementById('problem-form');
  if (!form) return;
  livePreview(form.elements.text, document.getElementById('text-preview'));
  livePreview(form.elements.solution, document.getElementById('solution-preview'));
  tryAnswer(form);
  document.body.dataset.problemEditor = 'ready';
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', init);
} else {
  init();
}
