/* The back office's few enhancements; every page works without them. No inline script (CSP). */
(function () {
  "use strict";

  // Template editor: a live preview as the user types (the "Preview" button does it without JS).
  var form = document.getElementById("template-form");
  var box = document.getElementById("template-preview");
  if (form && box && window.fetch && window.FormData) {
    var timer = null;
    var refresh = function () {
      var data = new FormData(form);
      fetch(form.getAttribute("data-preview-url"), {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" }
      }).then(function (r) { return r.json(); }).then(function (result) {
        var list = box.querySelector(".preview-problems");
        list.textContent = "";
        (result.problems || []).forEach(function (p) {
          var li = document.createElement("li"); li.textContent = p; list.appendChild(li);
        });
        var subject = box.querySelector(".preview-subject");
        if (subject) { subject.textContent = result.subject || ""; }
        box.querySelector(".preview-text").textContent = result.text || "";
      }).catch(function () { /* the button still works */ });
    };
    form.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 400);
    });
  }

  // YAML editor: a problem's "line 12, column 3" link puts the cursor there.
  var text = document.getElementById("text");
  document.querySelectorAll("a.goto-line").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (!text) { return; }
      event.preventDefault();
      var line = parseInt(link.getAttribute("data-line"), 10) || 1;
      var column = parseInt(link.getAttribute("data-column"), 10) || 1;
      var lines = text.value.split("\n");
      var offset = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i++) { offset += lines[i].length + 1; }
      offset += Math.min(column - 1, (lines[line - 1] || "").length);
      text.focus();
      text.setSelectionRange(offset, offset);
      var lineHeight = text.scrollHeight / Math.max(lines.length, 1);
      text.scrollTop = Math.max(0, (line - 3) * lineHeight);
    });
  });

  // The calendar switcher opens the chosen calendar at once (without this script, its button
  // does). Browsing a closed list with the keyboard changes the choice at each key: then the
  // button comes back and Enter confirms, instead of opening every calendar on the way.
  var switcher = document.querySelector("form.calendar-switcher");
  if (switcher) {
    var choice = switcher.querySelector("select");
    var confirm = switcher.querySelector("button[type=submit]");
    var chosen = choice.value;
    var browsing = false;
    confirm.hidden = true;
    choice.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        if (choice.value !== chosen) { event.preventDefault(); switcher.submit(); }
        return;
      }
      var moves = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Home", "End", "PageUp", "PageDown"];
      if (!event.altKey && (moves.indexOf(event.key) >= 0 || (event.key.length === 1 && event.key !== " "))) {
        browsing = true;
      }
    });
    choice.addEventListener("change", function () {
      if (choice.value === chosen) { return; }
      if (browsing) { confirm.hidden = false; return; }
      switcher.submit();
    });
  }

  // Lists of bookings: a click anywhere on a row opens the booking (its links stay the way for
  // the keyboard and for opening in a new tab).
  document.querySelectorAll("table.bookings tr[data-href]").forEach(function (row) {
    row.classList.add("row-link");
    row.addEventListener("click", function (event) {
      if (event.target.closest("a, button, input, select, textarea, label")) { return; }
      if (window.getSelection && String(window.getSelection())) { return; }  // selecting text
      var href = row.getAttribute("data-href");
      if (event.ctrlKey || event.metaKey || event.shiftKey) {
        window.open(href, "_blank", "noopener");
      } else {
        window.location.assign(href);
      }
    });
  });

  // The scenario editor's row buttons (add, move up or down, start from a lifecycle) change the
  // page in place: the form is posted as the button would post it, and the form's content is
  // replaced by the answer's, keeping the scroll where the row is and the focus on it. Without
  // this script the button posts the form and the address's anchor brings the page back there.
  var editor = document.querySelector("form.workflow-editor");
  if (editor && window.fetch && window.FormData && window.DOMParser) {
    var rowOps = /^(add_|lifecycle:|(fields|rules|states|transitions):(up|down):)/;
    editor.addEventListener("click", function (event) {
      var button = event.target.closest("button[name=op]");
      if (!button || !rowOps.test(button.value)) { return; }
      event.preventDefault();
      var data = new FormData(editor);
      data.set("op", button.value);
      var target = button.formAction || window.location.href;
      var anchor = target.indexOf("#") >= 0 ? target.slice(target.indexOf("#") + 1) : "";
      button.disabled = true;
      fetch(target.split("#")[0], {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-Requested-With": "fetch" }
      }).then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.text();
      }).then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html");
        var fresh = page.querySelector("form.workflow-editor");
        if (!fresh) { throw new Error("no editor"); }
        editor.innerHTML = fresh.innerHTML;  // our own page, escaped by its template
        showChoiceButtons();
        var row = anchor ? document.getElementById(anchor) : null;
        if (row) {
          row.scrollIntoView({ block: "center" });
          var first = row.querySelector("input:not([type=hidden]), select, textarea");
          if (first) { first.focus({ preventScroll: true }); }
        }
        editor.dispatchEvent(new Event("change"));  // the live preview follows
      }).catch(function () {
        button.disabled = false;
        editor.requestSubmit ? editor.requestSubmit(button) : editor.submit();
      });
    });

    // "Add a choice": another row of boxes under a list question (without this script, two
    // empty rows are always there, and more come with each check).
    editor.addEventListener("click", function (event) {
      var button = event.target.closest("button.add-choice");
      if (!button) { return; }
      var body = button.closest(".choices").querySelector("tbody");
      var last = body.querySelector("tr:last-child");
      if (!last) { return; }
      var copy = last.cloneNode(true);
      var next = body.querySelectorAll("tr").length;
      copy.querySelectorAll("input").forEach(function (input) {
        ["name", "id"].forEach(function (attribute) {
          var value = input.getAttribute(attribute);
          if (value) { input.setAttribute(attribute, value.replace(/-options-\d+-/, "-options-" + next + "-")); }
        });
        var label = input.getAttribute("aria-label");
        if (label) { input.setAttribute("aria-label", label.replace(/\d+/, String(next + 1))); }
        input.value = "";
      });
      body.appendChild(copy);
      copy.querySelector("input:not([type=hidden])").focus();
    });
    var showChoiceButtons = function () {
      editor.querySelectorAll("button.add-choice").forEach(function (b) { b.hidden = false; });
    };
    showChoiceButtons();
  }

  // Copy-paste helpers: select the whole snippet on focus.
  document.querySelectorAll(".snippet").forEach(function (field) {
    field.addEventListener("focus", function () { field.select(); });
  });

  // "Copy" buttons (hidden without this script: the field can still be selected and copied).
  document.querySelectorAll("button.copy-button[data-copy]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    var label = button.textContent;
    button.hidden = false;
    button.addEventListener("click", function () {
      var done = function () {
        button.textContent = button.getAttribute("data-copied") || label;
        setTimeout(function () { button.textContent = label; }, 2000);
      };
      field.focus();
      field.select();
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          if (document.execCommand("copy")) { done(); }
        });
      } else if (document.execCommand("copy")) {
        done();
      }
    });
  });

  // The day and week grid: a click on an empty time opens "why is this time not offered?"
  // (keyboard users have the form the page links to).
  document.querySelectorAll("td.agenda-empty[data-explain]").forEach(function (cell) {
    cell.addEventListener("click", function () {
      window.location.href = cell.getAttribute("data-explain");
    });
  });
})();
