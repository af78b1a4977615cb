// The tutor chat page: WebSocket client for docs/protocol.md, bundled into /static/tutor/chat.js.
//
// Nothing is exported globally except window.tutorChat = { renderMarkdown } (for tests).

import { renderInto, renderMarkdown } from './render.js';

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 8000;
const PING_INTERVAL_MS = 25000;
const ERROR_VISIBLE_MS = 6000;
const DEFAULT_MAX_CHARS = 2000;
const DEFAULT_MAX_REASON_CHARS = 300;

// Error codes that end the conversation on this page (sent right before a 44xx close).
const FATAL_ERROR_CODES = new Set(['unauthenticated', 'forbidden', 'not_found']);
// Error codes that do not mean "your message was rejected" even when they carry a client_id.
const NON_REJECTING_CODES = new Set(['model_unavailable', 'model_failed']);
// Error codes a `rate` frame may get (they never concern a message being sent).
const RATING_ERROR_CODES = new Set(['unknown_message', 'rate_limited', 'bad_frame', 'too_long']);

// The server closes a socket whose frames it kept refusing (docs/protocol.md, `flooding`).
const CLOSE_FLOODING = 4429;

const CLOSE_MESSAGES = {
  4401: 'You are not logged in. Log in again and reload this page.',
  4403: 'This tutoring session belongs to another account.',
  4404: 'This tutoring session does not exist.',
};

const ERROR_MESSAGES = {
  too_long: 'That message is too long.',
  empty: 'That message is empty.',
  busy: 'The tutor is still answering; wait for the reply to finish.',
  model_unavailable: 'The tutor is not available right now. Your message is saved; try again shortly.',
  model_failed: 'The tutor stopped unexpectedly. What it wrote so far is saved.',
  session_closed: 'This session is closed. Start a new session to keep practising.',
  unknown_message: 'That reply cannot be rated.',
  ambiguous_answer: 'Please give just one answer.',
  unauthenticated: CLOSE_MESSAGES[4401],
  forbidden: CLOSE_MESSAGES[4403],
  not_found: CLOSE_MESSAGES[4404],
};

/** A v4 UUID: crypto.randomUUID() where available (secure contexts), else getRandomValues. */
function newClientId() {
  const cryptoObj = globalThis.crypto;
  if (cryptoObj && typeof cryptoObj.randomUUID === 'function') {
    try {
      return cryptoObj.randomUUID();
    } catch {
      // fall through
    }
  }
  const bytes = new Uint8Array(16);
  if (cryptoObj && typeof cryptoObj.getRandomValues === 'function') {
    cryptoObj.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Length in code points, like Python's len() on the server. */
function charLength(text) {
  let n = 0;
  // eslint-disable-next-line no-unused-vars
  for (const _ of text) n += 1;
  return n;
}

function makeEl(tag, className, text) {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text != null) el.textContent = text;
  return el;
}

function startChat(root) {
  const byId = (id) => document.getElementById(id);
  const els = {
    status: byId('connection-status'),
    transcript: byId('transcript'),
    error: byId('error'),
    composer: byId('composer'),
    input: byId('message-input'),
    charCount: byId('char-count'),
    send: byId('send-button'),
    stop: byId('stop-button'),
    answerForm: byId('answer-form'),
    answerInput: byId('answer-input'),
    answerButton: byId('answer-button'),
    outcome: byId('outcome'),
  };
  if (!els.transcript || !els.composer || !els.input) return;

  const wsPath = root.dataset.wsPath || '';
  const initialMax = Number.parseInt(root.dataset.maxChars || '', 10);

  const state = {
    ws: null,
    connectionId: 0,
    open: false,
    ready: false, // the `session` frame of the current connection has arrived
    fatal: false,
    unloading: false,
    attempt: 0,
    reconnectTimer: 0,
    pingTimer: 0,
    errorTimer: 0,
    // client_id -> { text, li, sentOn } in send order; kept until the server's `message` frame.
    queue: new Map(),
    stream: null, // { replyId, li, body, text, frame }
    stopping: false,
    sessionClosed: false,
    awaitingAnswer: false,
    attemptCount: 0,
    maxChars: Number.isFinite(initialMax) && initialMax > 0 ? initialMax : DEFAULT_MAX_CHARS,
    maxReasonChars: DEFAULT_MAX_REASON_CHARS,
    // message id (string) -> the student's stored rating { helpful, reason } of that reply
    ratings: new Map(),
    // Set by a `flooding` error: the server refuses this student's sockets for that long.
    retryAfterMs: 0,
  };

  // ---------------------------------------------------------------- status, errors, controls

  function setStatus(word) {
    if (!els.status) return;
    els.status.textContent = word;
    els.status.dataset.state = word;
  }

  function hideError() {
    if (!els.error) return;
    els.error.hidden = true;
    els.error.textContent = '';
  }

  function showError(detail, { sticky = false } = {}) {
    if (!els.error) return;
    clearTimeout(state.errorTimer);
    els.error.textContent = detail;
    els.error.hidden = false;
    if (!sticky) state.errorTimer = setTimeout(hideError, ERROR_VISIBLE_MS);
  }

  /** What the server will count: CRLF as one character, surrounding space trimmed. */
  function composedLength() {
    return charLength(els.input.value.replace(/\r\n/g, '\n').trim());
  }

  function updateCharCount() {
    const n = composedLength();
    const over = n > state.maxChars;
    if (els.charCount) {
      els.charCount.textContent = `${n} / ${state.maxChars}`;
      els.charCount.dataset.over = String(over);
      els.charCount.classList.toggle('is-over', over);
      els.charCount.classList.toggle('is-near', !over && n > state.maxChars * 0.9);
    }
    if (over) els.input.setAttribute('aria-invalid', 'true');
    else els.input.removeAttribute('aria-invalid');
    return over;
  }

  function updateControls() {
    const over = updateCharCount();
    const streaming = state.stream !== null;
    const closed = state.sessionClosed;
    els.input.disabled = closed;
    if (els.send) els.send.disabled = closed || streaming || over || state.queue.size > 0;
    if (els.stop) {
      els.stop.hidden = !streaming;
      els.stop.disabled = !streaming || state.stopping;
    }
    els.composer.classList.toggle('is-disabled', closed);
    if (els.answerInput) els.answerInput.disabled = closed;
    if (els.answerButton) els.answerButton.disabled = closed || state.awaitingAnswer;
    root.dataset.streaming = String(streaming);
  }

  // ---------------------------------------------------------------- transcript

  function nearBottom() {
    const t = els.transcript;
    return t.scrollHeight - t.scrollTop - t.clientHeight < 96;
  }

  function scrollToEnd() {
    els.transcript.scrollTop = els.transcript.scrollHeight;
  }

  /** Run `change`, keeping the transcript pinned to the bottom if it was there (or if `force`). */
  function withScroll(change, force = false) {
    const stick = force || nearBottom();
    change();
    if (stick) scrollToEnd();
  }

  function buildMessage(role) {
    const safeRole = role === 'student' ? 'student' : 'tutor';
    const li = makeEl('li', `message message--${safeRole}`);
    li.dataset.role = safeRole;
    li.append(makeEl('span', 'message__author', safeRole === 'student' ? 'You' : 'Tutor'));
    const body = makeEl('div', 'message__body');
    li.append(body);
    return { li, body };
  }

  function bodyOf(li) {
    return li.querySelector(':scope > .message__body');
  }

  function setMeta(li, className, text, title) {
    li.querySelectorAll(':scope > .message__status, :scope > .message__partial').forEach((n) => n.remove());
    if (!className) return;
    const marker = makeEl('span', className, text);
    if (title) marker.title = title;
    li.append(marker);
  }

  /** Fill `li` from a stored message object of the protocol. */
  function applyStored(li, message) {
    if (message.id != null) li.dataset.messageId = String(message.id);
    if (message.client_id) li.dataset.clientId = String(message.client_id);
    delete li.dataset.pending;
    delete li.dataset.failed;
    delete li.dataset.streaming;
    li.removeAttribute('aria-busy');
    renderInto(bodyOf(li), message.text ?? '');
    if (li.dataset.role === 'tutor' && message.id != null && String(message.text ?? '').trim()) {
      ensureRating(li);
    }
    if (message.partial) {
      li.dataset.partial = 'true';
      setMeta(li, 'message__partial', '(stopped)', 'Only part of this reply was written (stopped or interrupted).');
    } else {
      delete li.dataset.partial;
      setMeta(li, null);
    }
  }

  function storedMessageElement(message) {
    const { li } = buildMessage(message.role);
    applyStored(li, message);
    return li;
  }

  function findMessage(predicate) {
    for (const li of els.transcript.children) if (predicate(li)) return li;
    return null;
  }

  function findByMessageId(id) {
    if (id == null) return null;
    const key = String(id);
    return findMessage((li) => li.dataset.messageId === key);
  }

  // ---------------------------------------------------------------- ratings of tutor replies

  function rememberRating(rating) {
    if (!rating || typeof rating !== 'object' || rating.message_id == null) return null;
    const stored = { helpful: rating.helpful === true, reason: typeof rating.reason === 'string' ? rating.reason : '' };
    state.ratings.set(String(rating.message_id), stored);
    return stored;
  }

  /** Thumbs up / down and an optional reason under a stored tutor reply (built once). */
  function ensureRating(li) {
    let box = li.querySelector(':scope > .message__rating');
    if (!box) {
      box = makeEl('div', 'message__rating');
      box.setAttribute('role', 'group');
      box.setAttribute('aria-label', 'Rate this reply');
      const up = makeEl('button', 'rating__button rating__button--up', '👍');
      up.type = 'button';
      up.dataset.helpful = 'true';
      up.setAttribute('aria-label', 'This reply helped');
      up.title = 'This reply helped';
      const down = makeEl('button', 'rating__button rating__button--down', '👎');
      down.type = 'button';
      down.dataset.helpful = 'false';
      down.setAttribute('aria-label', 'This reply did not help');
      down.title = 'This reply did not help';
      const form = makeEl('form', 'rating__reason');
      form.hidden = true;
      const inputId = `rating-reason-${li.dataset.messageId}`;
      const label = makeEl('label', 'visually-hidden', 'Why? (optional)');
      label.htmlFor = inputId;
      const input = makeEl('input', 'rating__reason-input');
      input.id = inputId;
      input.name = 'reason';
      input.autocomplete = 'off';
      input.placeholder = 'Why? (optional)';
      const save = makeEl('button', 'rating__reason-save', 'Send');
      save.type = 'submit';
      form.append(label, input, save);
      const status = makeEl('span', 'rating__status');
      status.setAttribute('role', 'status');
      box.append(up, down, form, status);
      for (const button of [up, down]) {
        button.addEventListener('click', () => sendRating(li, button.dataset.helpful === 'true'));
      }
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        const current = state.ratings.get(li.dataset.messageId);
        if (current) sendRating(li, current.helpful);
      });
      // After the body, before any "(stopped)" marker.
      bodyOf(li).after(box);
    }
    const input = box.querySelector('.rating__reason-input');
    if (input) input.maxLength = state.maxReasonChars;
    showRating(li);
  }

  function showRating(li) {
    const box = li.querySelector(':scope > .message__rating');
    if (!box) return;
    const rating = state.ratings.get(li.dataset.messageId);
    box.dataset.rated = rating ? String(rating.helpful) : '';
    for (const button of box.querySelectorAll('.rating__button')) {
      button.setAttribute('aria-pressed', String(Boolean(rating) && String(rating.helpful) === button.dataset.helpful));
    }
    const form = box.querySelector('.rating__reason');
    const input = box.querySelector('.rating__reason-input');
    if (form) form.hidden = !rating;
    // Typing is kept; the stored reason fills an empty box.
    if (rating && input && document.activeElement !== input && !input.value) input.value = rating.reason;
  }

  function sendRating(li, helpful) {
    const messageId = Number.parseInt(li.dataset.messageId || '', 10);
    if (!Number.isFinite(messageId)) return;
    const input = li.querySelector('.rating__reason-input');
    const reason = input ? input.value.trim() : '';
    if (charLength(reason) > state.maxReasonChars) {
      showError(`Your reason is too long (${charLength(reason)} of ${state.maxReasonChars} characters).`);
      return;
    }
    if (!sendFrame({ type: 'rate', message_id: messageId, helpful, reason })) {
      showError('Not connected right now, so your rating was not sent. Try again in a moment.');
      return;
    }
    const box = li.querySelector(':scope > .message__rating');
    if (box) box.dataset.pending = 'true';
  }

  function onRated(rating) {
    const stored = rememberRating(rating);
    if (!stored) return;
    const li = findByMessageId(rating.message_id);
    if (!li) return;
    const box = li.querySelector(':scope > .message__rating');
    if (box) {
      delete box.dataset.pending;
      const input = box.querySelector('.rating__reason-input');
      if (input) input.value = stored.reason;
      const status = box.querySelector('.rating__status');
      if (status) status.textContent = stored.reason ? 'Thanks for telling us why.' : 'Thanks! Tell us why, if you like.';
    }
    showRating(li);
  }

  function clearPendingRatings() {
    els.transcript.querySelectorAll('.message__rating[data-pending]').forEach((box) => {
      delete box.dataset.pending;
    });
  }

  // ---------------------------------------------------------------- socket

  function sendFrame(frame) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function flushQueue() {
    if (!state.open || !state.ready) return;
    for (const [clientId, item] of state.queue) {
      if (item.sentOn === state.connectionId) continue;
      if (sendFrame({ type: 'message', text: item.text, client_id: clientId })) {
        item.sentOn = state.connectionId;
      }
    }
  }

  function startPing() {
    stopPing();
    state.pingTimer = setInterval(() => sendFrame({ type: 'ping' }), PING_INTERVAL_MS);
  }

  function stopPing() {
    clearInterval(state.pingTimer);
    state.pingTimer = 0;
  }

  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = 0;
    if (state.fatal || state.unloading || state.ws) return;
    const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try {
      ws = new WebSocket(`${scheme}//${window.location.host}${wsPath}`);
    } catch {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.connectionId += 1;
    state.ready = false;

    ws.addEventListener('open', () => {
      if (state.ws !== ws) return;
      state.open = true;
      state.attempt = 0;
      setStatus('connected');
      startPing();
      updateControls();
    });

    ws.addEventListener('message', (event) => {
      if (state.ws !== ws) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame === 'object' && typeof frame.type === 'string') handleFrame(frame);
    });

    ws.addEventListener('close', (event) => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.open = false;
      state.ready = false;
      state.awaitingAnswer = false;
      stopPing();
      interruptStream();
      if (event.code === CLOSE_FLOODING) {
        // Not the end of the conversation: the pause the server asked for, then a reconnect.
        setStatus('reconnecting');
        clearTimeout(state.reconnectTimer);
        state.reconnectTimer = setTimeout(connect, state.retryAfterMs || 30000);
        state.retryAfterMs = 0;
        updateControls();
        return;
      }
      if (event.code >= 4400 && event.code < 4500 && !state.fatal) {
        // The server normally sends an `error` frame first; keep its detail if it did.
        state.fatal = true;
        showError(CLOSE_MESSAGES[event.code] || 'The chat connection was refused.', { sticky: true });
      }
      if (state.fatal) {
        setStatus('disconnected');
      } else if (state.unloading) {
        setStatus('disconnected');
      } else {
        scheduleReconnect();
      }
      updateControls();
    });
  }

  function scheduleReconnect() {
    if (state.fatal || state.unloading) return;
    setStatus('reconnecting');
    clearTimeout(state.reconnectTimer);
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** state.attempt);
    state.attempt = Math.min(state.attempt + 1, 10);
    const jittered = base * (0.75 + Math.random() * 0.5);
    const delay = Math.max(RECONNECT_MIN_MS / 2, Math.min(RECONNECT_MAX_MS, jittered));
    state.reconnectTimer = setTimeout(connect, delay);
  }

  // ---------------------------------------------------------------- frames

  function handleFrame(frame) {
    switch (frame.type) {
      case 'session':
        onSession(frame);
        break;
      case 'message':
        if (frame.message && typeof frame.message === 'object') onStoredMessage(frame.message);
        break;
      case 'reply.start':
        startStream(frame.reply_id);
        break;
      case 'reply.delta':
        appendDelta(frame.reply_id, frame.text);
        break;
      case 'reply.end':
        endStream(frame);
        break;
      case 'answer.result':
        onAnswerResult(frame);
        break;
      case 'rated':
        onRated(frame.rating);
        break;
      case 'error':
        onError(frame);
        break;
      default:
        break; // pong and anything unknown
    }
  }

  function onSession(frame) {
    const limit = Number(frame.limits?.max_message_chars);
    if (Number.isFinite(limit) && limit > 0) state.maxChars = limit;

    const reasonLimit = Number(frame.limits?.max_rating_reason_chars);
    if (Number.isFinite(reasonLimit) && reasonLimit > 0) state.maxReasonChars = reasonLimit;
    state.ratings.clear();
    for (const rating of Array.isArray(frame.ratings) ? frame.ratings : []) rememberRating(rating);

    cancelStream();
    const messages = Array.isArray(frame.messages) ? frame.messages : [];
    const storedClientIds = new Set();
    const fragment = document.createDocumentFragment();
    for (const message of messages) {
      if (!message || typeof message !== 'object') continue;
      fragment.append(storedMessageElement(message));
      if (message.client_id) storedClientIds.add(String(message.client_id));
    }
    // Messages still waiting for the server stay visible (after the stored ones) and get resent.
    for (const [clientId, item] of state.queue) {
      if (storedClientIds.has(clientId)) {
        state.queue.delete(clientId);
      } else {
        fragment.append(item.li);
      }
    }
    els.transcript.replaceChildren(fragment);
    scrollToEnd();

    const attempts = Array.isArray(frame.attempts) ? frame.attempts : [];
    state.attemptCount = attempts.length;
    applySession(frame.session);
    renderOutcome(attempts.at(-1) || null, frame.session);

    state.ready = true;
    flushQueue();
    updateControls();
  }

  function onStoredMessage(message) {
    const clientId = message.client_id ? String(message.client_id) : '';
    const item = clientId ? state.queue.get(clientId) : undefined;
    withScroll(() => {
      if (item) {
        state.queue.delete(clientId);
        applyStored(item.li, message);
      } else if (!findByMessageId(message.id)) {
        // e.g. the same session open in another tab, or a resend acknowledged again
        const existing = clientId ? findMessage((li) => li.dataset.clientId === clientId) : null;
        if (existing) applyStored(existing, message);
        else els.transcript.append(storedMessageElement(message));
      }
    });
    updateControls();
  }

  function renderStream() {
    const s = state.stream;
    if (!s) return;
    s.frame = 0;
    withScroll(() => renderInto(s.body, s.text));
  }

  function startStream(replyId) {
    if (state.stream && state.stream.replyId === replyId) return state.stream;
    interruptStream();
    const { li, body } = buildMessage('tutor');
    li.dataset.streaming = 'true';
    li.setAttribute('aria-busy', 'true');
    withScroll(() => els.transcript.append(li));
    state.stream = { replyId, li, body, text: '', frame: 0 };
    state.stopping = false;
    updateControls();
    return state.stream;
  }

  function appendDelta(replyId, text) {
    const s = state.stream && state.stream.replyId === replyId ? state.stream : startStream(replyId);
    if (typeof text !== 'string' || !text) return;
    s.text += text;
    if (!s.frame) s.frame = requestAnimationFrame(renderStream);
  }

  function endStream(frame) {
    const message = frame.message && typeof frame.message === 'object' ? frame.message : null;
    const s = state.stream;
    let li = null;
    if (s && (frame.reply_id == null || s.replyId === frame.reply_id)) {
      if (s.frame) cancelAnimationFrame(s.frame);
      li = s.li;
      state.stream = null;
    }
    state.stopping = false;
    withScroll(() => {
      if (message) {
        const existing = findByMessageId(message.id);
        if (existing && existing !== li) {
          li?.remove();
          li = existing;
        }
        if (!li) {
          li = buildMessage('tutor').li;
          els.transcript.append(li);
        }
        applyStored(li, message);
      } else if (li && !s.text.trim()) {
        li.remove(); // nothing was written (stopped at once, or the model was unavailable)
      } else if (li) {
        // Not stored (should not happen with text): keep what was shown, marked partial.
        renderInto(bodyOf(li), s.text);
        delete li.dataset.streaming;
        li.removeAttribute('aria-busy');
        li.dataset.partial = 'true';
        setMeta(li, 'message__partial', '(stopped)');
      }
    });
    updateControls();
  }

  /** The socket dropped mid-reply: keep what we have; the next `session` frame replaces it. */
  function interruptStream() {
    const s = state.stream;
    if (!s) return;
    if (s.frame) cancelAnimationFrame(s.frame);
    renderInto(s.body, s.text);
    delete s.li.dataset.streaming;
    s.li.removeAttribute('aria-busy');
    s.li.dataset.interrupted = 'true';
    state.stream = null;
    state.stopping = false;
  }

  function cancelStream() {
    const s = state.stream;
    if (!s) return;
    if (s.frame) cancelAnimationFrame(s.frame);
    s.li.remove();
    state.stream = null;
    state.stopping = false;
  }

  function applySession(session) {
    if (!session || typeof session !== 'object') return;
    if (typeof session.status === 'string') {
      root.dataset.sessionStatus = session.status;
      state.sessionClosed = session.status === 'closed';
    }
    if (!els.outcome) return;
    if (session.outcome != null && session.outcome !== '') els.outcome.dataset.outcome = String(session.outcome);
    else delete els.outcome.dataset.outcome;
  }

  function renderOutcome(attempt, session, feedback) {
    if (!els.outcome) return;
    const parts = [];
    if (attempt && typeof attempt === 'object') {
      const correct = Boolean(attempt.correct);
      const result = makeEl('p', `outcome__result outcome__result--${correct ? 'correct' : 'incorrect'}`);
      result.dataset.correct = String(correct);
      result.append(makeEl('strong', 'outcome__verdict', correct ? 'Correct!' : 'Not quite — keep going'));
      if (attempt.answer != null && attempt.answer !== '') {
        result.append(' ', makeEl('span', 'outcome__answer', `Your answer: ${attempt.answer}`));
      }
      parts.push(result);
      // Why a right value did not count (e.g. "simplest form"): plain text, never markup.
      if (typeof feedback === 'string' && feedback.trim()) {
        parts.push(makeEl('p', 'outcome__feedback', feedback.trim()));
      }
    }
    if (state.attemptCount > 0) {
      const n = state.attemptCount;
      parts.push(makeEl('p', 'outcome__attempts', `${n} ${n === 1 ? 'attempt' : 'attempts'} so far`));
    }
    if (session && session.status === 'closed') {
      parts.push(makeEl('p', 'outcome__note', 'This session is closed. Start a new session to keep practising.'));
    }
    els.outcome.replaceChildren(...parts);
  }

  function onAnswerResult(frame) {
    state.awaitingAnswer = false;
    state.attemptCount += 1;
    applySession(frame.session);
    renderOutcome(frame.attempt || null, frame.session, frame.feedback);
    if (frame.attempt && !frame.attempt.correct && els.answerInput && !els.answerInput.disabled) {
      els.answerInput.select();
    }
    updateControls();
  }

  function failPending(clientId) {
    const item = state.queue.get(clientId);
    if (!item) return;
    state.queue.delete(clientId);
    delete item.li.dataset.pending;
    item.li.dataset.failed = 'true';
    setMeta(item.li, 'message__status message__status--failed', 'Not sent — your text is back in the box');
    // Nothing is lost: the text goes back into the composer (before anything typed since).
    const current = els.input.value;
    els.input.value = current.trim() ? `${item.text}\n${current}` : item.text;
  }

  function onError(frame) {
    const code = typeof frame.code === 'string' ? frame.code : '';
    const detail = (typeof frame.detail === 'string' && frame.detail.trim()) || ERROR_MESSAGES[code] || 'Something went wrong.';
    if (FATAL_ERROR_CODES.has(code)) {
      state.fatal = true;
      showError(detail, { sticky: true });
    } else {
      showError(detail);
    }
    if (code === 'flooding') {
      const seconds = Number(frame.retry_after);
      state.retryAfterMs = Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 600) * 1000 : 30000;
    }
    if (code === 'session_closed') {
      state.sessionClosed = true;
      root.dataset.sessionStatus = 'closed';
    }
    const clientId = frame.client_id != null ? String(frame.client_id) : '';
    if (clientId && state.queue.has(clientId) && !NON_REJECTING_CODES.has(code)) {
      failPending(clientId);
    } else if (!clientId && state.awaitingAnswer && code !== 'model_unavailable' && code !== 'model_failed') {
      state.awaitingAnswer = false; // e.g. a bad answer frame
    }
    if (code === 'busy' || code === 'model_unavailable') state.stopping = false;
    if (RATING_ERROR_CODES.has(code)) clearPendingRatings();
    updateControls();
  }

  // ---------------------------------------------------------------- user actions

  function submitMessage() {
    const text = els.input.value.trim();
    if (!text) return;
    if (charLength(text) > state.maxChars) {
      showError(`Your message is too long (${charLength(text)} of ${state.maxChars} characters).`);
      return;
    }
    // One message at a time: wait for the reply (or for the pending message to be stored).
    if (state.sessionClosed || state.stream || state.queue.size > 0) return;
    const clientId = newClientId();
    const { li, body } = buildMessage('student');
    li.dataset.pending = 'true';
    li.dataset.clientId = clientId;
    renderInto(body, text);
    setMeta(li, 'message__status message__status--pending', 'Sending…');
    state.queue.set(clientId, { text, li, sentOn: 0 });
    withScroll(() => els.transcript.append(li), true);
    els.input.value = '';
    flushQueue();
    updateControls();
  }

  els.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    submitMessage();
  });

  els.input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    submitMessage();
  });

  els.input.addEventListener('input', updateControls);
  if (els.charCount) els.input.setAttribute('aria-describedby', 'char-count');

  els.stop?.addEventListener('click', () => {
    if (!state.stream || state.stopping) return;
    if (sendFrame({ type: 'stop' })) {
      state.stopping = true;
      updateControls();
    }
  });

  els.answerForm?.addEventListener('submit', (event) => {
    event.preventDefault();
    if (state.sessionClosed || state.awaitingAnswer || !els.answerInput) return;
    const answer = els.answerInput.value.trim();
    if (!answer) return;
    if (sendFrame({ type: 'answer', answer })) {
      state.awaitingAnswer = true;
      updateControls();
    } else {
      showError('Not connected right now, so your answer was not sent. Try again in a moment.');
    }
  });

  if (els.outcome && !els.outcome.hasAttribute('aria-live')) els.outcome.setAttribute('aria-live', 'polite');

  window.addEventListener('online', () => {
    if (!state.ws && !state.fatal && !state.unloading) {
      state.attempt = 0;
      connect();
    }
  });

  window.addEventListener('pagehide', () => {
    state.unloading = true;
    clearTimeout(state.reconnectTimer);
    if (state.ws) state.ws.close(1000, 'page hidden');
  });

  window.addEventListener('pageshow', (event) => {
    if (!event.persisted) return; // restored from the back/forward cache
    state.unloading = false;
    state.attempt = 0;
    connect();
  });

  // Opt-in: server-rendered text marked with data-markdown (e.g. the problem statement) goes
  // through the same Markdown + KaTeX + DOMPurify pipeline. Its textContent is the source.
  root.querySelectorAll('[data-markdown]').forEach((el) => {
    if (el.closest('#transcript')) return;
    renderInto(el, el.textContent || '');
    el.dataset.rendered = 'true';
  });

  if (els.status) {
    if (!els.status.dataset.state) els.status.dataset.state = (els.status.textContent || 'connecting').trim();
    els.status.setAttribute('role', 'status');
  }
  updateControls();
  connect();
}

window.tutorChat = Object.freeze({ renderMarkdown });

function init() {
  const root = document.getElementById('chat');
  if (root) startChat(root);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init, { once: true });
else init();
