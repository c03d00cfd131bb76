// The API's browsable page (/api/v1/docs): Swagger UI on this instance's own OpenAPI document.
// A file of its own: the Content-Security-Policy allows no inline script.
window.addEventListener("DOMContentLoaded", function () {
  var element = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: element.getAttribute("data-url"),
    domNode: element,
    deepLinking: true,
    validatorUrl: null,
  });
});
