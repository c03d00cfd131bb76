// Bookwise booking pages: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // 1. Show times in the visitor's own time zone, detected by the browser.
  var zoneSelect = document.querySelector("select[data-detect-zone]");
  if (zoneSelect) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var known = Array.prototype.some.call(zoneSelect.options, function (o) { return o.value === zone; });
    if (zone && known && zoneSelect.value !== zone) {
      var url = new URL(window.location.href);
      url.searchParams.set("tz", zone);
      window.location.replace(url.toString());
      return;
    }
  }

  // 2. Switch days without reloading the page.
  var picker = document.querySelector("[data-picker]");
  if (!picker || !picker.dataset.timesUrl) { return; }
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
        history.replaceState(null, "", day.href);
      })
      .catch(function () { window.location.href = day.href; });
  });
}());
