// Starts Redoc on the page GET /docs serves (gateway/docs.py). It lives in its own file, not in the
// page, so that the page's Content-Security-Policy can refuse every inline script.
"use strict";
(function () {
  var target = document.getElementById("redoc");
  // Relative to the page, so the reference also works behind a proxy that mounts the gateway under a prefix.
  var spec = new URL("openapi.json", document.baseURI).href;
  document.body.style.margin = "0";
  if (typeof Redoc === "undefined") {
    target.textContent = "The Redoc bundle did not load; the raw OpenAPI document is at " + spec;
    return;
  }
  Redoc.init(spec, {
    expandResponses: "200",
    requiredPropsFirst: true,
    hideHostname: true,
    jsonSampleExpandLevel: 3
  }, target);
})();
