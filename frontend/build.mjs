// Builds the chat bundle into dist/tutor/ (served by Django as /static/tutor/):
//   chat.js (+ .map)   IIFE, minified
//   chat.css (+ .map)  src/chat.css with KaTeX's CSS inlined
//   site.css (+ .map)  the pages around the chat: top bar, cards, forms, lists
//   dashboard.js, retraining.js (+ .map)  Chart.js pages (class dashboard, retraining)
//   problem_editor.js, problem_editor.css (+ .map)  the problem editor's live preview and
//     answer check (tutor/problems), through render.js
//   fonts/KaTeX_*-HASH.{woff2,woff,ttf}, referenced from chat.css by relative URLs
// Usage: node build.mjs [--watch]
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const outdir = join(here, 'dist', 'tutor');
const watch = process.argv.includes('--watch');

/** @type {import('esbuild').BuildOptions} */
const options = {
  absWorkingDir: here,
  entryPoints: [
    { in: 'src/chat.js', out: 'chat' },
    { in: 'src/chat.css', out: 'chat' },
    { in: 'src/site.css', out: 'site' },
    { in: 'src/teacher.js', out: 'teacher' },
    { in: 'src/dashboard.js', out: 'dashboard' },
    { in: 'src/retraining.js', out: 'retraining' },
    { in: 'src/problem_editor.js', out: 'problem_editor' },
  ],
  outdir,
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15', 'edge100'],
  minify: true,
  sourcemap: 'linked',
  legalComments: 'eof',
  loader: { '.woff2': 'file', '.woff': 'file', '.ttf': 'file' },
  assetNames: 'fonts/[name]-[hash]',
  logLevel: watch ? 'info' : 'warning',
};

// Old hashed font files would pile up otherwise.
rmSync(outdir, { recursive: true, force: true });

if (watch) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
