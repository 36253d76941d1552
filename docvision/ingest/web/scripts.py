"""The JavaScript a capture runs inside the page, as Playwright function sources.

In: nothing (constants). Out: function sources for ``page.evaluate``; each takes one argument and
returns JSON. They run in the page's own world, so they see what the page's scripts did to it.
"""

# Dialogs answered inside the page: one round trip to Python per alert() took ~60 ms, so a page
# raising a thousand of them never loaded. A handler on the page stays for beforeunload prompts.
QUIET_DIALOGS_JS = "window.alert = () => {}; window.confirm = () => false; window.prompt = () => null;"

# Scroll through the page once, a viewport at a time, so lazy images and infinite-scroll blocks load,
# then go back to the top. Bounded by height and by a deadline because some pages grow forever.
SCROLL_JS = """async ([maxHeight, budgetMs]) => {
  const end = Date.now() + budgetMs;
  const step = Math.max(200, window.innerHeight);
  // Two animation frames: enough for IntersectionObserver-driven lazy loaders to see the new position.
  const pause = () => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  if (document.documentElement.scrollHeight <= window.innerHeight) return;
  for (let y = 0; y < Math.min(document.documentElement.scrollHeight, maxHeight) && Date.now() < end; y += step) {
    window.scrollTo(0, y);
    await pause();
  }
  window.scrollTo(0, 0);
  await pause();
}"""

# After network idle: web fonts, images the scroll-through started, then a height that holds for 100 ms.
SETTLE_JS = """async (budgetMs) => {
  const end = Date.now() + budgetMs;
  const sleep = ms => new Promise(r => setTimeout(r, Math.max(0, ms)));
  if (document.fonts) await Promise.race([document.fonts.ready, sleep(budgetMs)]);
  const images = () => Array.from(document.images || []).every(i => i.complete);
  while (!images() && Date.now() < end) await sleep(50);
  let last = -1;
  while (Date.now() < end) {
    const height = document.documentElement.scrollHeight;
    if (height === last) return images();
    last = height;
    await sleep(100);
  }
  return false;
}"""

MEASURE_JS = """() => {
  window.scrollTo(0, 0);
  const d = document.documentElement, b = document.body, box = d.getBoundingClientRect();
  return {height: Math.max(d.scrollHeight, b ? b.scrollHeight : Math.max(box.bottom, window.innerHeight)),
          width: d.clientWidth || window.innerWidth, title: document.title || '', html: !!b};
}"""

# Every visible word of every text node, with its box in document CSS pixels, down to ``maxHeight``.
# A word's box costs a walk through its text node's layout, so one 2 MB paragraph took 66 s for its
# first 200000 words: a node is left once its words pass below the captured height, and the whole
# walk stops at ``budgetMs`` (``cut`` says why it stopped early, ``reached`` how far down it got).
# The result is one JSON string: Playwright's per-value serialization and checking of 1300 words
# was a tenth of the Python process's time.
WORDS_JS = """([maxWords, maxHeight, budgetMs]) => {
  const end = Date.now() + budgetMs;
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'TEXTAREA']);
  const root = document.body || document.documentElement;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {acceptNode(node) {
    const el = node.parentElement;
    if (!el || skip.has(el.tagName) || !/\\S/.test(node.nodeValue)) return NodeFilter.FILTER_REJECT;
    if (el.checkVisibility && !el.checkVisibility({opacityProperty: true, visibilityProperty: true}))
      return NodeFilter.FILTER_REJECT;
    return NodeFilter.FILTER_ACCEPT;
  }});
  const out = [], range = document.createRange(), sx = window.scrollX, sy = window.scrollY;
  const re = /\\S+/g;
  let node, cut = '', reached = 0;
  walk: while ((node = walker.nextNode())) {
    const text = node.nodeValue;
    re.lastIndex = 0;
    let m;
    while ((m = re.exec(text))) {
      if (out.length >= maxWords) { cut = 'words'; break walk; }
      if (Date.now() > end) { cut = 'time'; break walk; }
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const r = range.getBoundingClientRect();
      if (r.top + sy >= maxHeight) break;  // the rest of this node lies lower still
      if (r.width > 0 && r.height > 0) {
        out.push([m[0], r.left + sx, r.top + sy, r.right + sx, r.bottom + sy]);
        reached = Math.max(reached, r.top + sy);
      }
    }
  }
  return JSON.stringify({words: out, cut, reached});
}"""

# The box of what the page draws, in document CSS px: its words, pictures and controls, boxes with a
# background, border or shadow of their own (the page's own background is not content), and elements
# with generated content (::before, ::after). A page is then
# captured at this extent instead of the whole browser window: three lines of text no longer sit in a
# corner of a 1280x720 picture. ``found`` is false for a page that draws nothing; ``complete`` is false
# when the walk ran out of time (the whole page is captured then). ``line`` is the body's line height.
EXTENT_JS = """(budgetMs) => {
  const end = Date.now() + budgetMs;
  const root = document.body || document.documentElement;
  const sx = window.scrollX, sy = window.scrollY;
  const own = getComputedStyle(root);
  const line = parseFloat(own.lineHeight) || 1.2 * (parseFloat(own.fontSize) || 16);
  const skip = new Set(['SCRIPT', 'STYLE', 'NOSCRIPT', 'TEMPLATE', 'HEAD', 'TITLE', 'META', 'LINK']);
  const replaced = new Set(['IMG', 'SVG', 'CANVAS', 'VIDEO', 'IFRAME', 'EMBED', 'OBJECT', 'INPUT', 'TEXTAREA',
                            'SELECT', 'BUTTON', 'HR', 'METER', 'PROGRESS']);
  const sides = ['Top', 'Right', 'Bottom', 'Left'];
  const painted = s => s.backgroundImage !== 'none' || s.boxShadow !== 'none'
    || !/^(transparent|rgba\\(.*,\\s*0\\))$/.test(s.backgroundColor)
    || sides.some(side => s['border' + side + 'Style'] !== 'none' && parseFloat(s['border' + side + 'Width']) > 0);
  // ::before and ::after draw text and boxes no tree walk sees: their element's box stands for them.
  const generated = el => ['::before', '::after'].some(p => !/^(none|normal)$/.test(getComputedStyle(el, p).content));
  let found = false, right = 0, bottom = 0;
  const add = r => {
    if (r.width <= 0 || r.height <= 0) return;
    found = true; right = Math.max(right, r.right + sx); bottom = Math.max(bottom, r.bottom + sy);
  };
  const range = document.createRange();
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT, {acceptNode(node) {
    return node.nodeType === 1 && skip.has(node.tagName.toUpperCase()) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT;
  }});
  if (generated(root)) add(root.getBoundingClientRect());
  let node, count = 0;
  while ((node = walker.nextNode())) {
    if ((++count & 255) === 0 && Date.now() > end) return {complete: false, found: false, line};
    if (node.nodeType === 3) {
      const el = node.parentElement;
      if (!el || !/\\S/.test(node.nodeValue)) continue;
      if (el.checkVisibility && !el.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
      // A huge text node is measured by its element: laying out its every line again costs seconds.
      if (node.length > 20000) { add(el.getBoundingClientRect()); continue; }
      range.selectNodeContents(node);
      add(range.getBoundingClientRect());
    } else if (node !== root) {
      const s = getComputedStyle(node);
      if (s.visibility === 'visible' && s.opacity !== '0'
          && (replaced.has(node.tagName.toUpperCase()) || painted(s) || generated(node)))
        add(node.getBoundingClientRect());
    }
  }
  return {complete: true, found, line, right, bottom};
}"""
