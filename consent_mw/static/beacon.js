/* consent-mw interaction beacon, only for visitors who granted analytics: where they went
   and how far they read, never what they typed or dialled (no query, no field, no number).
   The server decides the rest (docs/capture.md, "Interactions"). It must never break a page. */
(function () {
  "use strict";
  try {
    var me = document.currentScript;
    var url = me && me.getAttribute("data-cmw-beacon");
    if (!url) { return; }
    var exts = (me.getAttribute("data-cmw-downloads") || "").toLowerCase().split(",");
    var IDLE = 15000;  // engaged: visible, and some input within the last 15 s
    var here = location.origin;
    var cut = function (s, n) { return String(s).slice(0, n); };
    var send = function (list) {
      try {
        for (var i = 0; i < list.length; i++) { list[i].p = cut(location.pathname, 2048); }
        var body = JSON.stringify({ events: list });
        // A string body is text/plain: no preflight, and it survives the page unloading.
        if (!(navigator.sendBeacon && navigator.sendBeacon(url, body)) && window.fetch) {
          fetch(url, { method: "POST", body: body, keepalive: true,
                       credentials: "same-origin" }).catch(function () {});
        }
      } catch (e) { /* never into the page */ }
    };
    var on = function (target, type, fn) {
      target.addEventListener(type, function (e) {
        try { fn(e); } catch (err) { /* never into the page */ }
      }, { capture: true, passive: true });
    };

    var click = function (e) {
      if (e.type === "auxclick" && e.button !== 1) { return; }  // middle click opens a tab
      var el = e.target, out = [];
      if (!el || !el.closest) { return; }
      var tagged = el.closest("[data-cmw-event]");
      var name = tagged ? cut(tagged.getAttribute("data-cmw-event").trim(), 128) : "";
      if (name) { out.push({ k: "custom", n: name }); }
      var a = el.closest("a[href]");
      if (a) {
        var u = new URL(a.getAttribute("href"), location.href);
        var path = u.pathname, last = path.slice(path.lastIndexOf("/") + 1);
        var dot = last.lastIndexOf(".");
        var ext = dot > 0 ? last.slice(dot + 1).toLowerCase() : "";
        var same = u.origin === here;
        var where = cut(same ? path : u.origin + path, 2048);
        if (u.protocol === "tel:") { out.push({ k: "tel" }); }
        else if (u.protocol === "mailto:") { out.push({ k: "mailto" }); }
        else if (u.protocol === "http:" || u.protocol === "https:") {
          if (a.hasAttribute("download") || (ext && exts.indexOf(ext) >= 0)) {
            out.push({ k: "download", u: where });
          } else if (!same) { out.push({ k: "out", u: where }); }
        }
      }
      if (out.length) { send(out); }
    };
    on(document, "click", click);
    on(document, "auxclick", click);
    on(document, "submit", function (e) {
      var f = e.target;  // attributes, not properties: a field named "id" shadows form.id
      var u = new URL(f.getAttribute("action") || location.href, location.href);
      send([{ k: "form", id: cut(f.getAttribute("id") || "", 128),
              a: cut(u.origin === here ? u.pathname : u.origin + u.pathname, 2048) }]);
    });

    var depth = 0, engaged = 0, last = Date.now(), visible = !document.hidden, sent = false;
    var scrolled = function () {
      var doc = document.documentElement, h = doc.scrollHeight;
      var pct = h > 0 ? ((window.scrollY || doc.scrollTop) + window.innerHeight) / h * 100 : 100;
      depth = Math.max(depth, Math.min(100, Math.round(pct)));
    };
    var active = function () {  // time since the last input counts, up to IDLE
      var now = Date.now();
      if (visible) { engaged += Math.min(now - last, IDLE); }
      last = now;
    };
    ["mousedown", "mousemove", "keydown", "touchstart", "wheel"].forEach(function (t) {
      on(document, t, active);
    });
    on(window, "scroll", function () { active(); scrolled(); });
    var hidden = function (e) {
      if (!document.hidden && e.type !== "pagehide") {  // shown again
        visible = true; last = Date.now(); return;
      }
      active();
      visible = false;
      if (sent) { return; }
      sent = true;  // once per page, at its first hide
      scrolled();
      var s = Math.min(1800, Math.round(engaged / 1000)), list = [{ k: "scroll", d: depth }];
      if (s > 0) { list.push({ k: "engaged", s: s }); }
      send(list);
    };
    on(document, "visibilitychange", hidden);
    on(window, "pagehide", hidden);
    scrolled();
  } catch (e) { /* never into the page */ }
})();
