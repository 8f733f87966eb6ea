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

// The test form: choosing a topic shows its example as the data to send.
(function () {
  var topic = document.getElementById("test-topic");
  var data = document.getElementById("test-data");
  if (!topic || !data) {
    return;
  }
  topic.addEventListener("change", function () {
    var chosen = topic.options[topic.selectedIndex];
    data.value = chosen ? chosen.getAttribute("data-example") || "" : "";
  });
})();

// The topics of a webhook's form: a search that hides those that do not match, and "All topics" ticking each.
(function () {
  var search = document.getElementById("topic-search");
  var all = document.getElementById("all-topics");
  var choices = document.querySelectorAll(".topic-choice");
  if (search) {
    search.hidden = false;
    search.addEventListener("input", function () {
      var wanted = search.value.trim().toLowerCase();
      choices.forEach(function (choice) {
        choice.hidden = wanted !== "" && choice.getAttribute("data-topic").indexOf(wanted) < 0;
      });
    });
  }
  if (all) {
    all.addEventListener("change", function () {
      choices.forEach(function (choice) {
        var box = choice.querySelector("input");
        if (!box.disabled) {
          box.checked = all.checked;
        }
      });
    });
  }
})();

// A page waiting for something about to happen (a test event's first attempt) looks again every second, a minute
// at most.
(function () {
  var waiting = document.querySelector("[data-portal-refresh]");
  if (!waiting) {
    return;
  }
  var tries = Number(sessionStorage.getItem("hookline:refresh:" + location.pathname) || "0");
  if (tries >= 60) {
    return;
  }
  sessionStorage.setItem("hookline:refresh:" + location.pathname, String(tries + 1));
  setTimeout(function () { location.reload(); }, 1000);
})();
