/* The scenario editor's live preview: as the user types, the editor's form is posted (600 ms
   after the last change) to the draft-preview endpoint, and its answer (the booking form and the
   messages, or what to fix first) replaces the content of #live-preview. The language links of
   the preview ask again in that language. No inline script (CSP); without this script the box
   stays hidden and the editor's "Check and preview" button does the same. */
(function () {
  "use strict";

  var box = document.getElementById("live-preview");
  var form = document.querySelector("form.workflow-editor");
  if (!box || !form || !window.fetch || !window.FormData) { return; }
  var url = box.getAttribute("data-url");
  var slug = box.getAttribute("data-slug");
  var language = "";
  var timer = null;
  var asked = 0;  // only the answer to the latest request is shown

  function failed() {
    box.textContent = "";
    var note = document.createElement("p");
    note.className = "alert alert-warning";
    note.textContent = box.getAttribute("data-failed");
    box.appendChild(note);
  }

  function refresh() {
    var data = new FormData(form);
    if (slug) { data.set("slug", slug); }
    if (language) { data.set("preview_lang", language); }
    var ticket = ++asked;
    fetch(url, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" }
    }).then(function (response) {
      // 200: the preview or what to fix; 422: the form itself is wrong. Anything else (an
      // expired session's error page) is not a fragment.
      if (response.status !== 200 && response.status !== 422) { throw new Error(response.status); }
      return response.text();
    }).then(function (html) {
      if (ticket !== asked) { return; }
      box.innerHTML = html;  // our own page's fragment, escaped by its template
      box.hidden = false;
    }).catch(function () {
      if (ticket === asked) { failed(); box.hidden = false; }
    });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 600);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  box.addEventListener("click", function (event) {
    var link = event.target.closest("a[data-preview-lang]");
    if (!link) { return; }
    event.preventDefault();
    language = link.getAttribute("data-preview-lang");
    refresh();
  });
  refresh();
})();
