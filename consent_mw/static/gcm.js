/* consent-mw: Google Consent Mode v2 default + update, read from data attributes (no inline JS).
   Only ever served when the visitor granted a Google tag's category. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) { return; }
  var data = script.dataset;
  window.dataLayer = window.dataLayer || [];
  function gtag() { window.dataLayer.push(arguments); }
  window.gtag = window.gtag || gtag;
  function parse(text) { try { return JSON.parse(text || "{}"); } catch (e) { return {}; } }
  gtag("consent", "default", parse(data.gcmDefault));
  gtag("consent", "update", parse(data.gcm));
  var ga = (data.ga || "").split(",").filter(Boolean);
  if (ga.length) {
    gtag("js", new Date());
    ga.forEach(function (id) { gtag("config", id); });
  }
  if (data.gtm) {
    window.dataLayer.push({ "gtm.start": new Date().getTime(), event: "gtm.js" });
  }
})();
