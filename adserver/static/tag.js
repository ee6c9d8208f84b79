/*! adserver tag.js: fills <ins data-ad-slot> elements; one global, window.adserver.
 * data-ad-status on each slot: lazy, loading, filled, empty or error. */
(() => {
  "use strict";
  const w = window;
  const d = document;
  if (w.adserver && w.adserver.refresh) return; // loaded twice: the first copy works

  const TAG = /\/tag\.js([?#].*)?$/;
  const me = d.currentScript && d.currentScript.hasAttribute("data-site") ? d.currentScript
    : Array.from(d.querySelectorAll("script[data-site]")).find((s) => TAG.test(s.src));
  if (!me) return;
  const BASE = me.src.replace(TAG, "");
  const SITE = me.getAttribute("data-site");
  const FC_KEY = "adsv_fc";
  const FC_DAYS = 7;
  const FC_MAX = 20;
  const IO = "IntersectionObserver" in w;

  // Storage only without Global Privacy Control and, under a TCF CMP, with purpose 1 consent.
  let storageOk = false;
  const consent = new Promise((resolve) => {
    if (navigator.globalPrivacyControl === true) return resolve();
    if (typeof w.__tcfapi !== "function") {
      storageOk = true;
      return resolve();
    }
    setTimeout(resolve, 1000); // a silent CMP: contextual ads, nothing stored
    try {
      w.__tcfapi("addEventListener", 2, (tc, ok) => {
        storageOk = !!(ok && tc && (tc.gdprApplies === false ||
          (tc.eventStatus !== "cmpuishown" && tc.purpose && tc.purpose.consents[1])));
        resolve();
      });
    } catch (e) {
      resolve();
    }
  });

  // Frequency caps: campaign id -> recent UNIX times, in the reader's localStorage.
  const now = () => Math.floor(Date.now() / 1000);

  function readCaps() {
    if (!storageOk) return null;
    try {
      const stored = JSON.parse(localStorage.getItem(FC_KEY) || "{}");
      const since = now() - FC_DAYS * 86400;
      const caps = {};
      Object.keys(stored).forEach((id) => {
        const times = Array.isArray(stored[id]) ? stored[id].filter((t) => t > since) : [];
        if (times.length) caps[id] = times.slice(-FC_MAX);
      });
      return caps;
    } catch (e) {
      return null;
    }
  }

  function remember(campaign) {
    const caps = campaign == null ? null : readCaps();
    if (!caps) return;
    caps[campaign] = (caps[campaign] || []).concat(now()).slice(-FC_MAX);
    try {
      localStorage.setItem(FC_KEY, JSON.stringify(caps));
    } catch (e) { /* best effort */ }
  }

  function beacon(url) {
    if (!url) return;
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(url)) return;
    } catch (e) { /* fetch then */ }
    fetch(url, { method: "POST", keepalive: true, mode: "no-cors", credentials: "omit" })
      .catch(() => {});
  }

  // Viewable: >= 50% of the creative in view for 1 continuous second, tab visible.
  const views = new Map(); // creative node -> {node, url, inView, timer}
  const viewIO = IO && new IntersectionObserver((entries) => {
    entries.forEach((e) => {
      const v = views.get(e.target);
      if (!v) return;
      v.inView = e.isIntersecting && e.intersectionRatio >= 0.499;
      arm(v);
    });
  }, { threshold: 0.5 });

  function arm(v) {
    clearTimeout(v.timer);
    if (v.inView && !d.hidden) {
      v.timer = setTimeout(() => {
        beacon(v.url);
        unwatch(v.node);
      }, 1000);
    }
  }

  function watch(node, url) {
    if (!viewIO || !node || !url) return;
    views.set(node, { node, url, inView: false, timer: 0 });
    viewIO.observe(node);
  }

  function unwatch(node) {
    const v = views.get(node);
    if (!v) return;
    clearTimeout(v.timer);
    views.delete(node);
    viewIO.unobserve(node);
  }

  d.addEventListener("visibilitychange", () => views.forEach(arm));

  const slots = new WeakMap(); // ins -> {display, node}
  const nameOf = (el) => el.getAttribute("data-ad-slot");
  const list = (el, attr) => (el.getAttribute(attr) || "").split(",")
    .map((s) => s.trim()).filter(Boolean);
  const setStatus = (el, status) => el.setAttribute("data-ad-status", status);
  let epoch = 0; // bumped by refresh(): older answers are dropped
  // Campaigns this page view shows, sent with each later batch (page rules).
  let shown = new Set();
  let asked = false;

  // Sizes no wider than the slot's box, else the narrowest (scaled down), as embed.py reserves.
  const widthOf = (s) => +s.split("x")[0] || 0;
  function fitting(el) {
    const sizes = list(el, "data-ad-sizes");
    const box = el.clientWidth;
    if (!box || !sizes.length) return sizes;
    const fit = sizes.filter((s) => widthOf(s) <= box);
    if (fit.some(widthOf)) return fit;
    const narrowest = Math.min(...sizes.map(widthOf).filter(Boolean));
    return sizes.filter((s) => !widthOf(s) || widthOf(s) === narrowest);
  }

  const lazyIO = IO && new IntersectionObserver((entries) => {
    const near = entries.filter((e) => e.isIntersecting).map((e) => e.target);
    near.forEach((el) => lazyIO.unobserve(el));
    if (near.length) request(near);
  }, { rootMargin: "100% 0px" });

  // The page's size wins; a bare slot gets its tallest data-ad-sizes reserved.
  function prepare(el) {
    const style = el.style;
    const state = { display: style.display, node: null };
    const sized = style.minHeight || style.height || el.getBoundingClientRect().height > 0;
    if (!sized) {
      const box = el.clientWidth;
      const heights = fitting(el).map((s) => {
        const h = +s.split("x")[1] || 0;
        return box && widthOf(s) > box ? h * box / widthOf(s) : h;
      });
      const tallest = Math.max(0, ...heights);
      if (tallest) style.minHeight = tallest + "px";
    }
    slots.set(el, state);
    return state;
  }

  function scan() {
    const eager = [];
    d.querySelectorAll("ins[data-ad-slot]").forEach((el) => {
      if (el.hasAttribute("data-ad-status")) return;
      if (!slots.has(el)) prepare(el);
      const rendered = el.getClientRects().length > 0;
      const near = rendered && el.getBoundingClientRect().top < 2 * w.innerHeight;
      if (!lazyIO || el.getAttribute("data-ad-lazy") === "off" || near) {
        eager.push(el);
      } else {
        setStatus(el, "lazy");
        lazyIO.observe(el);
      }
    });
    if (eager.length) request(eager);
  }

  // One POST per batch; a name seen twice (one slot per post) waits for the next.
  async function request(els) {
    const mine = epoch;
    const batch = [];
    const later = [];
    const seen = new Set();
    const keywords = new Set();
    els.forEach((el) => {
      setStatus(el, "loading");
      (seen.has(nameOf(el)) ? later : batch).push(el);
      seen.add(nameOf(el));
    });
    const body = {
      site: SITE,
      slots: batch.map((el) => {
        const slot = { name: nameOf(el) };
        const sizes = fitting(el);
        if (sizes.length) slot.sizes = sizes;
        list(el, "data-ad-keywords").forEach((k) => keywords.add(k));
        return slot;
      }),
      url: location.href,
    };
    if (keywords.size) body.keywords = Array.from(keywords).join(",");
    if (asked) body.shown = Array.from(shown).join(",");
    asked = true;
    let answer = null;
    try {
      await consent;
      const caps = readCaps();
      if (caps && Object.keys(caps).length) body.fc = caps;
      // A string body is text/plain: no CORS preflight.
      const res = await fetch(BASE + "/v1/decide",
        { method: "POST", body: JSON.stringify(body), credentials: "omit" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      answer = await res.json();
      if (answer.errors && answer.errors.length) console.warn("adserver:", answer.errors);
    } catch (err) {
      console.warn("adserver:", err);
    }
    if (mine !== epoch) return;
    batch.forEach((el) => {
      if (!el.isConnected) return; // removed meanwhile: never shown, never counted
      const decision = answer && answer.decisions && answer.decisions[nameOf(el)];
      if (decision) render(el, decision);
      else collapse(el, answer ? "empty" : "error");
    });
    if (later.length) request(later);
  }

  function render(el, ad) {
    const state = slots.get(el);
    let node;
    if (ad.kind === "html") {
      // HTML creatives never touch the page: sandboxed frame only.
      node = d.createElement("iframe");
      node.setAttribute("sandbox", "allow-scripts allow-popups allow-popups-to-escape-sandbox");
      node.className = "adsv-frame";
      node.title = "Advertisement";
      node.width = ad.width || "100%";
      node.height = ad.height || el.clientHeight || 90;
      node.srcdoc = '<base target="_blank"><style>body{margin:0;overflow:hidden}</style>' +
        ad.html;
      el.textContent = "";
      // Wider than its box: scaled down whole.
      const k = ad.width > el.clientWidth ? el.clientWidth / ad.width : 1;
      let box = node;
      if (k < 1 && ad.height) {
        box = d.createElement("div");
        box.style.cssText = "overflow:hidden;margin:auto;width:" + ad.width * k + "px;height:" +
          ad.height * k + "px";
        node.style.cssText = "max-width:none;transform-origin:0 0;transform:scale(" + k + ")";
        box.appendChild(node);
      }
      el.appendChild(box);
    } else {
      el.innerHTML = ad.html; // image or text markup, escaped by the server
      node = (ad.kind === "image" && el.querySelector("img")) || el.firstElementChild;
      // A text ad fills the box the page reserved.
      el.classList.toggle("adsv-fill", ad.kind === "text");
    }
    if (ad.campaign != null) shown.add(ad.campaign);
    state.node = node;
    setStatus(el, "filled");
    beacon(ad.impression_url);
    (ad.impression_trackers || []).forEach((u) => { new Image().src = u; }); // third parties'
    remember(ad.campaign);
    watch(node, ad.view_url);
    fire(el, "slotRendered", ad);
  }

  function collapse(el, status) {
    setStatus(el, status);
    el.style.display = "none";
    fire(el, "slotEmpty", null);
  }

  function fire(el, name, decision) {
    el.dispatchEvent(new CustomEvent("adserver:" + name,
      { bubbles: true, detail: { slot: nameOf(el), element: el, decision } }));
  }

  function reset(el) {
    const state = slots.get(el);
    if (lazyIO) lazyIO.unobserve(el);
    if (state) {
      if (state.node) el.textContent = "";
      el.classList.remove("adsv-fill");
      state.node = null;
      el.style.display = state.display;
    }
    el.removeAttribute("data-ad-status");
  }

  const style = d.createElement("style");
  style.textContent = "ins[data-ad-slot]{display:block;text-align:center;text-decoration:none}" +
    ".adsv-image img{max-width:100%;height:auto;border:0;vertical-align:top}" +
    ".adsv-frame{border:0;max-width:100%;vertical-align:top}" +
    "ins.adsv-fill{display:flex!important;flex-direction:column}" +
    ".adsv-fill>.adsv-text{flex:1 1 auto;width:100%;box-sizing:border-box;margin:0 auto}" +
    ".adsv-text{display:flow-root;max-width:728px;margin:auto;padding:12px;text-align:left;" +
    "border:1px solid rgba(128,128,128,.4);border-radius:6px;color:inherit;text-decoration:none}" +
    ".adsv-text::before{content:'Sponsored';float:right;margin-left:8px;font-size:.75em}" +
    ".adsv-text img{float:left;width:64px;height:64px;object-fit:cover;margin-right:12px}" +
    ".adsv-title{display:block}.adsv-cta{font-weight:bold;text-decoration:underline}";
  (d.head || d.documentElement).prepend(style);

  w.adserver = {
    // New decisions for every slot (e.g. a single-page site changed page).
    refresh() {
      epoch++;
      shown = new Set();
      asked = false;
      views.forEach((v) => unwatch(v.node));
      d.querySelectorAll("ins[data-ad-slot]").forEach(reset);
      scan();
    },
    // Fill slots added since, leaving the others alone.
    load: scan,
    // on("slotRendered" | "slotEmpty", fn): fn({slot, element, decision})
    on(name, fn) {
      d.addEventListener("adserver:" + name, (e) => fn(e.detail));
    },
  };

  if (d.readyState === "loading") d.addEventListener("DOMContentLoaded", scan);
  else scan();
})();
