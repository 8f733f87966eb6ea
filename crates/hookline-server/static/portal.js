// Hookline's portal script: signs in from a link's fragment, and tells a framing page when the session is over.
"use strict";
(function () {
  var state = document.querySelector("[data-portal-state]");
  var name = state ? state.getAttribute("data-portal-state") : "";
  if (name === "signed-out" && window.parent !== window) {
    // The platform's page mints a new link when it hears this.
    window.parent.postMessage({ type: "hookline:signed-out" }, "*");
  }
  if (name !== "signing-in") {
    return;
  }
  var match = /(?:^#|&)token=([^&]+)/.exec(window.location.hash);
  // The token leaves the address bar and the history at once.
  history.replaceState(null, "", window.location.pathname);
  var status = document.getElementById("redeem-status");
  if (!match) {
    status.textContent = "This address holds no sign-in link. Open the link your platform gave you.";
    return;
  }
  var form = document.getElementById("redeem");
  form.elements.token.value = decodeURIComponent(match[1]);
  form.submit();
})();

// Copy buttons: data-copy names the element whose text to copy.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("[data-copy]") : null;
  if (!button) {
    return;
  }
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = "Copied";
    });
  }
});
