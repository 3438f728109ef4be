/* consent-mw banner: progressive enhancement of the plain form (which works without JS). */
(function () {
  "use strict";
  var banner = document.getElementById("cmw-banner");
  if (!banner) { return; }
  var endpoint = banner.getAttribute("data-cmw-endpoint") || "/_consent";
  var form = banner.querySelector("form");
  // Move focus to the dialog so keyboard and screen-reader users meet it first.
  try { banner.focus({ preventScroll: true }); } catch (e) { /* old browsers */ }
  if (!form || !window.fetch) { return; }
  // Report the display: the server writes the "shown" record (once per 30 minutes) and
  // links the decision to it. Failure changes nothing for the visitor.
  fetch(endpoint + "/shown", {
    method: "POST",
    credentials: "same-origin",
    keepalive: true,
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ locale: banner.lang, path: window.location.pathname })
  }).catch(function () { /* offline, blocked: nothing to do */ });

  function fallback(action) {
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "action";
    input.value = action;
    form.appendChild(input);
    HTMLFormElement.prototype.submit.call(form);
  }

  form.addEventListener("submit", function (event) {
    var button = event.submitter;
    if (!button || !button.value) { return; }
    event.preventDefault();
    var action = button.value;
    var buttons = form.querySelectorAll("button");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = true; }
    fetch(endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ action: action, component: "banner", locale: banner.lang })
    }).then(function (response) {
      if (!response.ok) { throw new Error("consent " + response.status); }
      return response.json();
    }).then(function () {
      if (action === "accept_all") {
        // Tags are injected server-side, so the page must be rendered again.
        window.location.reload();
      } else {
        banner.parentNode.removeChild(banner);
      }
    }).catch(function () { fallback(action); });
  });
})();
