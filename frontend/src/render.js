// Markdown + math rendering for chat messages, always sanitised before it reaches the DOM.
//
// Pipeline: marked (GFM, line breaks) -> KaTeX for $..$, $$..$$, \(..\), \[..\]
//           -> DOMPurify (own instance, strict config) -> sanitised string or DocumentFragment.
//
// Raw HTML inside a message is never interpreted: marked's `html` tokens are rendered as escaped
// text, so `<script>` or `<img onerror>` typed by a student (or produced by the model) shows up
// literally. DOMPurify runs on the result anyway, as a second line of defence.

import DOMPurify from 'dompurify';
import katex from 'katex';
import { Marked } from 'marked';
import markedKatex from 'marked-katex-extension';

const KATEX_OPTIONS = Object.freeze({
  throwOnError: false,
  output: 'htmlAndMathml',
  trust: false, // no \href, \url, \includegraphics, \htmlClass, ...
  strict: 'ignore',
  maxSize: 20, // em: a huge \rule cannot cover the page
  maxExpand: 500, // macro bombs stop early
});

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ESCAPES[ch]);
}

function renderTex(tex, displayMode) {
  try {
    return katex.renderToString(tex, { ...KATEX_OPTIONS, displayMode });
  } catch {
    // throwOnError:false renders most errors inline; anything else falls back to the source.
    return `<code class="math-error">${escapeHtml(tex)}</code>`;
  }
}

// \( ... \) and \[ ... \] (LaTeX style delimiters, which LLMs like to use), plus $$ ... $$ that
// spans several lines inside a paragraph (marked-katex-extension only handles $$ on one line or as
// its own block). Registered after marked-katex-extension, so marked tries it first; it runs before
// marked's backslash-escape rule, which would otherwise turn "\(" into "(".
const INLINE_PAREN = /^\\\(((?:\\[^]|[^\\])+?)\\\)/;
// Display forms also swallow one following line break, so no empty line (<br>) trails the block.
const INLINE_BRACKET = /^\\\[((?:\\[^]|[^\\])+?)\\\][ \t]*\n?/;
const MULTILINE_DOLLARS = /^\$\$((?:\\[^]|[^\\$])*?\n(?:\\[^]|[^\\$])*?)\$\$[ \t]*\n?/;
const BLOCK_BRACKET = /^ {0,3}\\\[((?:\\[^]|[^\\])+?)\\\][ \t]*(?:\n+|$)/;

const texDelimiters = {
  extensions: [
    {
      name: 'texDelimiterMath',
      level: 'inline',
      start(src) {
        const match = /\\[([]|\$\$/.exec(src);
        return match ? match.index : undefined;
      },
      tokenizer(src) {
        let match = INLINE_PAREN.exec(src);
        if (match && !/\n[ \t]*\n/.test(match[1])) {
          return { type: 'texDelimiterMath', raw: match[0], text: match[1].trim(), displayMode: false };
        }
        match = INLINE_BRACKET.exec(src) || MULTILINE_DOLLARS.exec(src);
        if (match && !/\n[ \t]*\n/.test(match[1])) {
          return { type: 'texDelimiterMath', raw: match[0], text: match[1].trim(), displayMode: true };
        }
        return undefined;
      },
      renderer(token) {
        return renderTex(token.text, token.displayMode);
      },
    },
    {
      // \[ ... \] opening a block, which may contain blank lines.
      name: 'texDelimiterBlock',
      level: 'block',
      tokenizer(src) {
        const match = BLOCK_BRACKET.exec(src);
        if (match) {
          return { type: 'texDelimiterBlock', raw: match[0], text: match[1].trim() };
        }
        return undefined;
      },
      renderer(token) {
        return `<p>${renderTex(token.text, true)}</p>\n`;
      },
    },
  ],
};

const markdown = new Marked({ gfm: true, breaks: true, async: false });
markdown.use(markedKatex(KATEX_OPTIONS));
markdown.use(texDelimiters);
markdown.use({
  renderer: {
    // Raw HTML (block or inline) is shown as text, never interpreted.
    html(token) {
      return escapeHtml(token.text);
    },
    // No remote images in the chat (tracking pixels, layout abuse): show them as links.
    image(token) {
      const label = token.text ? `image: ${token.text}` : 'image';
      return this.link({ href: token.href, title: token.title, text: label, tokens: null, autolink: true });
    },
  },
});

// A private DOMPurify instance, so the hook below does not leak into other code on the page.
const purifier = DOMPurify(window);

const PURIFY_CONFIG = Object.freeze({
  // KaTeX's MathML (kept for screen readers) wraps the TeX source in <semantics>/<annotation>,
  // which DOMPurify drops by default. <annotation> is plain text here (annotation-xml stays out).
  ADD_TAGS: ['semantics', 'annotation'],
  ADD_ATTR: ['encoding'],
  FORBID_TAGS: [
    'script', 'style', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'link', 'meta',
    'base', 'form', 'input', 'button', 'textarea', 'select', 'option', 'img', 'picture', 'source',
    'video', 'audio', 'track', 'use', 'foreignObject', 'annotation-xml', 'template', 'dialog',
  ],
  FORBID_ATTR: ['id', 'name', 'srcset', 'action', 'formaction', 'xlink:href', 'autofocus', 'tabindex'],
  ALLOW_DATA_ATTR: false,
  ALLOW_UNKNOWN_PROTOCOLS: false,
  SANITIZE_NAMED_PROPS: true,
});

purifier.addHook('uponSanitizeAttribute', (node, data) => {
  // Event handlers are already removed by DOMPurify; make that explicit and unconditional.
  if (/^on/i.test(data.attrName)) {
    data.keepAttr = false;
  }
});

purifier.addHook('afterSanitizeAttributes', (node) => {
  if (node.nodeName.toLowerCase() === 'a' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
});

function toHtml(text) {
  const source = text == null ? '' : String(text);
  try {
    return markdown.parse(source);
  } catch {
    return `<p>${escapeHtml(source)}</p>`;
  }
}

/** Markdown + math -> sanitised HTML string (exposed as window.tutorChat.renderMarkdown). */
export function renderMarkdown(text) {
  return purifier.sanitize(toHtml(text), PURIFY_CONFIG);
}

/** Markdown + math -> sanitised DocumentFragment (no HTML string is ever assigned to the DOM). */
export function renderFragment(text) {
  return purifier.sanitize(toHtml(text), { ...PURIFY_CONFIG, RETURN_DOM_FRAGMENT: true });
}

/** Replace the children of `element` with the rendered, sanitised message. */
export function renderInto(element, text) {
  element.replaceChildren(renderFragment(text));
}
