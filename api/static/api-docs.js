/* cardiomapa — starts Swagger UI on /docs (an external file: the pages allow no inline script).
   The page names the OpenAPI document in #swagger-ui[data-openapi-url]. */
(function () {
  "use strict";
  var box = document.getElementById("swagger-ui");
  if (!box || typeof SwaggerUIBundle === "undefined") { return; }
  window.ui = SwaggerUIBundle({
    url: box.getAttribute("data-openapi-url") || "/openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null, // no badge from validator.swagger.io
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
  });
})();
