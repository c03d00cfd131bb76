// Bookwise booking pages: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // 1. Show times in the visitor's own time zone, detected by the browser. The server maps an
  // alias the browser may report (Asia/Calcutta) to the zone's current name (Asia/Kolkata).
  var zoneSelect = document.querySelector("select[data-detect-zone]");
  if (zoneSelect) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone && zoneSelect.value !== zone) {
      var url = new URL(window.location.href);
      url.searchParams.set("tz", zone);
      window.location.replace(url.toString());
      return;
    }
  }

  // 2. Questions asked only if another's answer fits (a workflow's show_if): shown and hidden
  // as the client answers; a hidden one is disabled, so it is neither required nor sent. The
  // server hid those that did not apply to the answers it built the page with; they are judged
  // again here from the answers on the page.
  var conditional = Array.prototype.slice.call(document.querySelectorAll("[data-show-if]"));
  if (conditional.length) {
    // The questions the client has seen, sent with the form ("asked"): the server asks those
    // that apply but were never shown on a second step (that is for pages without this
    // script). A question once shown stays listed, so that a page and a server that judge an
    // answer differently cannot send the client round in circles.
    var askedInput = document.querySelector("input[name=asked]");
    var seen = askedInput ? askedInput.value.split(/\s+/).filter(Boolean) : [];
    var answerOf = function (name) {
      var inputs = Array.prototype.slice.call(document.getElementsByName(name));
      if (!inputs.length) { return null; }
      var box = inputs[0].closest(".shown-if");
      if (box && box.hidden) { return null; }  // a question not asked has no answer
      if (inputs.length === 1 && inputs[0].type === "checkbox") { return inputs[0].checked; }
      if (inputs[0].type === "checkbox" || inputs[0].type === "radio") {
        return inputs.filter(function (i) { return i.checked; }).map(function (i) { return i.value; });
      }
      return inputs[0].value.trim();
    };
    var holds = function (rule, answer) {
      var blank = answer === null || answer === "" || (Array.isArray(answer) && !answer.length);
      if (rule.test === "answered") { return Boolean(rule.value) !== blank; }
      if (blank) { return rule.test === "not_equals" || rule.test === "not_in"; }
      var given = Array.isArray(answer) ? answer.map(String) : [String(answer)];
      if (rule.test === "equals" || rule.test === "not_equals") {
        var same = answer === rule.value || given.indexOf(String(rule.value)) >= 0;
        return rule.test === "equals" ? same : !same;
      }
      if (rule.test === "in" || rule.test === "not_in") {
        var found = rule.value.some(function (v) { return given.indexOf(String(v)) >= 0; });
        return rule.test === "in" ? found : !found;
      }
      var left = Number(answer), right = Number(rule.value);
      if (isNaN(left) || isNaN(right)) { left = String(answer); right = String(rule.value); }
      return { lt: left < right, lte: left <= right, gt: left > right, gte: left >= right }[rule.test];
    };
    var refresh = function () {
      for (var round = 0; round < conditional.length; round++) {  // chains settle in as many rounds
        conditional.forEach(function (box) {
          var rule = JSON.parse(box.getAttribute("data-show-if"));
          var shown = holds(rule, answerOf(rule.field));
          box.hidden = !shown;
          box.querySelectorAll("input, select, textarea").forEach(function (i) { i.disabled = !shown; });
        });
      }
      conditional.forEach(function (box) {
        var id = box.getAttribute("data-question");
        if (!box.hidden && id && seen.indexOf(id) < 0) { seen.push(id); }
      });
      if (askedInput) { askedInput.value = seen.join(" "); }
    };
    document.addEventListener("input", refresh);
    document.addEventListener("change", refresh);
    refresh();
  }

  var picker = document.querySelector("[data-picker]");
  if (!picker) { return; }

  // 2. The month is one tab stop: a grid walked with the arrow keys (WAI-ARIA grid pattern,
  // roving tabindex). Left/Right: a day; Up/Down: a week; Home/End: the week's first and last
  // day; Ctrl+Home/End: the month's; Enter or Space: choose a free day.
  var grid = picker.querySelector("[data-day-grid]");
  var days = grid ? Array.prototype.slice.call(grid.querySelectorAll("[data-day]")) : [];

  function rove(target) {
    days.forEach(function (day) { day.tabIndex = day === target ? 0 : -1; });
  }

  function shifted(iso, count) {
    var parts = iso.split("-");
    var moment = new Date(Date.UTC(+parts[0], +parts[1] - 1, +parts[2] + count));
    return moment.toISOString().slice(0, 10);
  }

  function dayAt(iso) {
    return grid.querySelector('[data-day="' + iso + '"]');
  }

  if (days.length) {
    grid.setAttribute("role", "grid");
    rove(grid.querySelector(".day.selected[data-day]") ||
         grid.querySelector("a.day.free") || days[0]);
    grid.addEventListener("keydown", function (event) {
      var current = event.target.closest("[data-day]");
      if (!current) { return; }
      var target = null;
      var row = current.closest("tr");
      var inRow = Array.prototype.slice.call(row.querySelectorAll("[data-day]"));
      switch (event.key) {
        case "ArrowRight": target = dayAt(shifted(current.dataset.day, 1)); break;
        case "ArrowLeft": target = dayAt(shifted(current.dataset.day, -1)); break;
        case "ArrowDown": target = dayAt(shifted(current.dataset.day, 7)); break;
        case "ArrowUp": target = dayAt(shifted(current.dataset.day, -7)); break;
        case "Home": target = event.ctrlKey ? days[0] : inRow[0]; break;
        case "End": target = event.ctrlKey ? days[days.length - 1] : inRow[inRow.length - 1]; break;
        case "Enter":
        case " ":
          event.preventDefault();
          if (current.matches("a.day.free, a.day.full")) { current.click(); }
          return;
        default: return;
      }
      event.preventDefault();  // arrows would scroll the page
      if (target) {
        rove(target);
        target.focus();
      }
    });
    grid.addEventListener("focusin", function (event) {
      var day = event.target.closest("[data-day]");
      if (day) { rove(day); }
    });
  }

  // 3. Switch days without reloading the page.
  if (!picker.dataset.timesUrl) { return; }
  var list = picker.querySelector("[data-slots]");
  var title = picker.querySelector("[data-day-label]");
  picker.addEventListener("click", function (event) {
    var day = event.target.closest("a.day.free");
    if (!day) { return; }
    event.preventDefault();
    var url = new URL(picker.dataset.timesUrl, window.location.href);
    url.searchParams.set("date", day.dataset.day);
    fetch(url.toString(), { headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status); }
        return response.json();
      })
      .then(function (data) {
        picker.querySelectorAll("a.day.selected").forEach(function (a) {
          a.classList.remove("selected");
          a.removeAttribute("aria-current");
        });
        day.classList.add("selected");
        day.setAttribute("aria-current", "date");
        if (days.length) { rove(day); }
        title.textContent = data.label;
        list.textContent = "";
        if (!data.slots.length) {
          var empty = document.createElement("li");
          empty.className = "empty";
          empty.textContent = picker.dataset.empty;
          list.appendChild(empty);
        }
        data.slots.forEach(function (slot) {
          var item = document.createElement("li");
          var a = document.createElement("a");
          a.className = "slot";
          a.href = picker.dataset.slotHref.replace("__START__", encodeURIComponent(slot.start));
          a.textContent = slot.label;
          if (slot.places) {
            var places = document.createElement("span");
            places.className = "remaining";
            places.textContent = " · " + slot.places;
            a.appendChild(places);
          }
          item.appendChild(a);
          list.appendChild(item);
        });
        // With a waitlist: the day's full times, each with its link to wait for it. A day
        // switched to here has free times: the whole day is not to be waited for.
        var full = picker.querySelector("[data-full-times]");
        if (full) {
          full.textContent = "";
          (data.full || []).forEach(function (slot) {
            var item = document.createElement("li");
            var label = document.createElement("span");
            label.className = "slot full";
            label.textContent = slot.label + " · " + full.dataset.label;
            var join = document.createElement("a");
            join.className = "join-waitlist";
            join.href = slot.href;
            join.textContent = full.dataset.join;
            join.setAttribute("aria-label", full.dataset.joinFor.replace("__TIME__", slot.label));
            item.appendChild(label);
            item.appendChild(document.createTextNode(" "));
            item.appendChild(join);
            full.appendChild(item);
          });
          full.hidden = !(data.full || []).length;
        }
        document.querySelectorAll("[data-waitlist-day]").forEach(function (p) { p.remove(); });
        history.replaceState(null, "", day.href);
      })
      .catch(function () { window.location.href = day.href; });
  });
}());
