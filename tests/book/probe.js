// Loaded by tests/book/test_rendered.py: loads each page in an iframe and reports what a reader sees.
const pages = __PAGES__;
const glossary = __GLOSSARY__;  // [{ids: [...], names: [...]}, ...]
const results = {};
const frame = document.getElementById('f');
const SKIP = 'script,style,pre,code,mjx-container,.highlight,textarea,.MathJax,svg';
const TEX = /\\(frac|dfrac|begin|end|sum|prod|int|mathbf|mathrm|mathcal|operatorname|left|right|underbrace|overbrace|sqrt|cdot|times|alpha|beta|gamma|sigma|lambda|theta|hat|tilde|text|leq|geq|log|exp|partial|nabla|quad|setminus|cup|cap|in)(?![a-zA-Z])|\$\$|\\\(|\\\)|\\\[|\\\]/;
const OPTION = /(^|\s):(width|alt|class|name|height|align|scale|label|tags|caption|figwidth|figclass|target|linenos|emphasize-lines|dedent|start-after|end-before|pyobject|language|header-rows|widths|nowrap|loading):(?=\s|$)/;
const PHRASES = /\b(API reference|performance appendix|glossary|bibliography|execution status)\b/i;
const CODE_FORMULA = /\^|_\{|\\[a-zA-Z]{2,}/;

function textNodes(root) {
  const out = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const el = n.parentElement;
    if (!el || el.closest(SKIP)) continue;
    if (n.textContent.trim()) out.push(n);
  }
  return out;
}
function ownText(el) {  // text of el without code, math and scripts
  return textNodes(el).map(n => n.textContent).join('');
}
function snip(s, m) { const i = Math.max(0, m.index - 30); return s.slice(i, m.index + 50).replace(/\s+/g, ' '); }

function check(d, win) {
  const main = d.querySelector('main') || d.body;
  const article = main.querySelector('article') || main;
  const r = {};
  CHECKS.forEach(c => r[c] = []);
  // raw TeX and leaked options in the running text
  for (const n of textNodes(article)) {
    const t = n.textContent;
    let m = t.match(TEX);
    if (m) r['raw TeX'].push(snip(t, m));
    m = t.match(OPTION);
    if (m) r['leaked directive option'].push(snip(t, m));
  }
  article.querySelectorAll('mjx-merror, [data-mjx-error]').forEach(e =>
    r['raw TeX'].push('MathJax error: ' + (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80)));
  // widths: stored outputs, code cells, displayed formulas
  article.querySelectorAll('pre').forEach(p => {
    if (p.scrollWidth <= p.clientWidth + 1) return;
    const kind = p.closest('.cell_output') ? 'wide output' : 'wide code';  // code cells, listings
    const line = p.textContent.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
    r[kind].push(`${p.scrollWidth}px > ${p.clientWidth}px: ${line.trim().slice(0, 70)}`);
  });
  article.querySelectorAll('.cell_output .output').forEach(o => {
    if (o.querySelector('pre')) return;  // counted above
    if (o.scrollWidth > o.clientWidth + 1) r['wide output'].push(`${o.scrollWidth}px > ${o.clientWidth}px (html output)`);
  });
  article.querySelectorAll('mjx-container[display="true"]').forEach(c => {
    const box = c.querySelector('svg') || c;
    const col = (c.closest('div.math, .math') || c.parentElement).clientWidth;
    const w = box.getBoundingClientRect().width;
    if (w > col + 1) r['wide math'].push(`${Math.round(w)}px > ${col}px: ${(c.getAttribute('aria-label') || '').slice(0, 60)}`);
  });
  // math split by list markup
  article.querySelectorAll('p, li').forEach(el => {
    if (el.closest('pre, code, .cell_output')) return;
    if (el.tagName === 'P' && el.closest('li')) return;  // judged with its list item
    const t = ownText(el);
    const dollars = (t.match(/(?<!\\)\$/g) || []).length;
    if (dollars % 2 === 1) r['math split by list markup'].push('odd number of $: ' + t.trim().slice(0, 80));
    else if (el.tagName === 'LI' && /\\[a-zA-Z]{2,}/.test(t)) r['math split by list markup'].push('TeX in a list item: ' + t.trim().slice(0, 80));
  });
  // formulas written in code font
  article.querySelectorAll('code.literal, p > code, li > code').forEach(c => {
    if (c.closest('pre, a, .cell_output, .xref') || c.classList.contains('xref')) return;
    const t = c.textContent;
    if (CODE_FORMULA.test(t) && !/[()\[\]'"=]\s*$|^\w+\(|\.py$|\*\*/.test(t)) r['formula in code font'].push(t.slice(0, 60));
  });
  // unlinked references
  for (const n of textNodes(article)) {
    if (n.parentElement.closest('a, h1, h2, h3, h4, h5, h6, dt, caption, .caption')) continue;
    const m = n.textContent.match(PHRASES);
    if (m) r['unlinked reference'].push('"' + m[0] + '" without a link: ' + snip(n.textContent, m));
  }
  article.querySelectorAll('.xref').forEach(x => {
    if (!x.closest('a')) r['unlinked reference'].push('role without a target: ' + x.textContent.slice(0, 60));
  });
  const links = Array.from(main.querySelectorAll('a[href]'));
  const linkedIds = new Set(links.map(a => (a.getAttribute('href').split('#')[1] || '')).filter(Boolean));
  if (/\/notebooks\//.test(win.location.pathname)) {
    const prose = textNodes(article).filter(n => !n.parentElement.closest('a, h1, h2, h3, h4, h5, h6, .cell_output, figcaption, .caption'))
      .map(n => n.textContent).join(' ');
    for (const g of glossary) {
      const used = g.names.some(name => {
        const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/[- ]/g, '[- ]');
        const caseSensitive = name.length <= 5 && name === name.toUpperCase().replace('MAP', 'mAP');
        return new RegExp('(?<![\\w-])' + esc + 's?(?![\\w-])', caseSensitive ? '' : 'i').test(prose);
      });
      if (used && !g.ids.some(id => linkedIds.has(id))) r['unlinked glossary term'].push(g.names.join(' / '));
    }
  }
  const imgs = Array.from(main.querySelectorAll('img')).map(im => ({src: im.getAttribute('src'), ok: im.complete && im.naturalWidth > 0}));
  const stateTag = d.querySelector('script[type="application/vnd.jupyter.widget-state+json"]');
  const state = stateTag ? (JSON.parse(stateTag.textContent).state || {}) : {};
  const isProgressBar = id => {  // tqdm.auto draws an HBox holding a FloatProgress
    const m = state[id];
    if (!m || m.model_name !== 'HBoxModel') return false;
    return (m.state.children || []).some(ref => {
      const child = state[String(ref).replace('IPY_MODEL_', '')];
      return child && child.model_name === 'FloatProgressModel';
    });
  };
  const cells = Array.from(main.querySelectorAll('div.cell')).map(c => ({
    widget: Array.from(c.querySelectorAll('script[type*="widget-view"]')).some(
      v => !isProgressBar(JSON.parse(v.textContent).model_id)),
    widgetRendered: !!c.querySelector('.jupyter-widgets, .widget-container, .lm-Widget'),
    img: !!c.querySelector('.cell_output img')}));
  return {checks: r, imgs, links: links.map(a => a.href), linkTexts: links.map(a => a.textContent.trim()),
          cells, mathjax: article.querySelectorAll('mjx-container').length,
          mathSource: article.querySelectorAll('.math').length,
          errors: main.querySelectorAll('.output.traceback, .output.error').length};
}
const CHECKS = __CHECKS__;
let i = 0;
function next() {
  if (i >= pages.length) {
    document.getElementById('out').textContent = 'RESULT' + JSON.stringify(results); return;
  }
  frame.onload = () => setTimeout(async () => {
    const win = frame.contentWindow;
    try {
      if (win.MathJax && win.MathJax.startup && win.MathJax.startup.promise) await win.MathJax.startup.promise;
    } catch (e) {}
    try { results[pages[i]] = check(frame.contentDocument, win); }
    catch (e) { results[pages[i]] = {probeError: String(e)}; }
    i += 1; next();
  }, 500);
  frame.src = pages[i];
}
next();
