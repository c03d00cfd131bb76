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
})();
