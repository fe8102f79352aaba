// The tracking page updates itself: it polls GET /v1/track/{code} on this node (same origin, allowed by the
// page's Content-Security-Policy) and, when the timeline has changed, redraws the timeline, the status badge, the
// last known position, the truck on the map and its alerts. It polls only while the movement can still change:
// not at all for a page rendered closed or cancelled, and no more once a poll says so (`final`), when the
// "Updates automatically" badge goes too. Times are shown as the server wrote them, in the office's local time,
// never in the browser's. Data only ever goes into the page through textContent and attributes, never parsed as
// markup. No build step, no dependencies.
(function () {
  "use strict";

  var body = document.body;
  var config = JSON.parse(body.getAttribute("data-track") || "{}");
  if (!config.api) {
    return;
  }
  var SVG = "http://www.w3.org/2000/svg";
  var seen = signature(document.querySelectorAll("#timeline > li"));
  var timer = null;
  var stopped = Boolean(config.final);

  function signature(rows) {
    var parts = [];
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      if (row.getAttribute) {
        parts.push(row.getAttribute("data-step") + "@" + (row.getAttribute("data-office") || ""));
      } else {
        parts.push(row.step + "@" + (row.office || ""));
      }
    }
    return parts.join("|");
  }

  function displayTime(value) {
    // '2026-05-01T14:03+05:00' -> '2026-05-01 14:03 UTC+05:00', as the server renders it (tracking/public.py)
    var at = value.indexOf("T");
    if (at < 0) {
      return value;
    }
    var rest = value.slice(at + 1);
    return value.slice(0, at) + " " + rest.slice(0, 5) + " UTC" + rest.slice(5);
  }

  function countryName(code) {
    return (config.countries && config.countries[code]) || code;
  }

  function renderTimeline(steps) {
    var list = document.getElementById("timeline");
    var template = document.getElementById("step-template");
    var rows = [];
    var before = list.children.length;
    for (var i = 0; i < steps.length; i++) {
      var step = steps[i];
      var row = template.content.firstElementChild.cloneNode(true);
      row.setAttribute("data-step", step.step);
      if (step.office) {
        row.setAttribute("data-office", step.office);
      }
      if (step.alert) {
        row.classList.add("alert");
      }
      if (step.rule) {
        row.setAttribute("data-rule", step.rule);
      }
      if (i === steps.length - 1) {
        row.classList.add("latest");
      }
      if (i >= before) {
        row.classList.add("fresh");
      }
      row.querySelector(".what").textContent = step.label;
      var when = row.querySelector(".when");
      when.textContent = displayTime(step.time);
      when.setAttribute("datetime", step.time);
      row.querySelector(".place").textContent = step.place || step.office || "";
      var chip = row.querySelector(".chip");
      chip.textContent = countryName(step.country);
      chip.classList.add("country-" + step.country);
      var detail = row.querySelector(".detail");
      detail.textContent = step.detail || "";
      detail.hidden = !step.detail;
      rows.push(row);
    }
    list.replaceChildren.apply(list, rows);
    document.getElementById("event-count").textContent = String(steps.length);
    document.getElementById("no-events").hidden = steps.length > 0;
    body.setAttribute("data-events", String(steps.length));
  }

  function renderStatus(status) {
    var badge = document.getElementById("status");
    badge.className = "badge status status-" + status;
    badge.setAttribute("data-status", status);
    badge.textContent = (config.statuses && config.statuses[status]) || status.replace("_", " ");
  }

  function project(lat, lon) {
    var map = document.getElementById("map");
    var number = function (name) {
      return parseFloat(map.getAttribute("data-" + name));
    };
    var x = number("ox") + (lon - number("west")) * number("cos") * number("scale");
    var y = number("oy") + (number("north") - lat) * number("scale");
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  function officeMarker(office) {
    return office ? document.querySelector('#map .office[data-office="' + office + '"]') : null;
  }

  function truckPlace(track) {
    // As the server draws it (routemap.truck_place): the last office passed, from the view's current place.
    var current = track.current_place;
    if (current && current.lat !== null && current.lat !== undefined) {
      return current;
    }
    return null;
  }

  function positionText(place) {
    // 'Gishtkuprik, Uzbekistan'; the country once only when the name carries it (pages.position_text)
    var country = countryName(place.country);
    var name = place.name || place.office || place.country;
    var suffix = "(" + country + ")";
    return name.slice(-suffix.length) === suffix ? name : name + ", " + country;
  }

  function point(place) {
    var marker = officeMarker(place.office);
    if (marker) {
      return [parseFloat(marker.getAttribute("data-x")), parseFloat(marker.getAttribute("data-y"))];
    }
    if (place.lat !== null && place.lat !== undefined && place.lon !== null && place.lon !== undefined) {
      return project(place.lat, place.lon);
    }
    return null;
  }

  function renderPosition(track) {
    var place = truckPlace(track);
    var truck = document.getElementById("truck");
    var text = document.getElementById("position");
    if (!place) {
      return;
    }
    text.textContent = positionText(place);
    var xy = point(place);
    if (truck && xy) {
      truck.setAttribute("transform", "translate(" + xy[0] + " " + xy[1] + ")");
      truck.classList.remove("hidden");
      if (place.office) {
        truck.setAttribute("data-office", place.office);
      } else {
        truck.removeAttribute("data-office");
      }
    }
  }

  function renderOffices(steps) {
    for (var i = 0; i < steps.length; i++) {
      var marker = officeMarker(steps[i].office);
      if (marker) {
        marker.classList.add("visited");
      }
    }
  }

  function addAlert(track) {
    // A new alert as the last event: mark it when it was raised at an office. An alert on the road is listed but
    // not drawn: the public page never shows an e-seal's raw position (the server's _alert_spots does the same).
    var steps = track.timeline;
    var last = steps[steps.length - 1];
    if (!last || !last.alert || !last.office) {
      return;
    }
    var xy = point({ office: last.office });
    if (!xy) {
      return;
    }
    var group = document.createElementNS(SVG, "g");
    group.setAttribute("class", "alert-marker");
    group.setAttribute("transform", "translate(" + xy[0] + " " + xy[1] + ")");
    var title = document.createElementNS(SVG, "title");
    title.textContent = last.detail ? last.label + ": " + last.detail : last.label;
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("d", "M0 -10 L10 7 L-10 7 Z");
    var mark = document.createElementNS(SVG, "text");
    mark.setAttribute("y", "5");
    mark.setAttribute("text-anchor", "middle");
    mark.textContent = "!";
    group.append(title, path, mark);
    document.getElementById("alerts").append(group);
  }

  function setLive(ok) {
    var live = document.getElementById("live");
    live.setAttribute("data-state", ok ? "live" : "offline");
    live.textContent = ok ? config.words.live : config.words.offline;
  }

  function stop() {
    // The movement is closed or cancelled: nothing will change any more, so the page stops asking.
    stopped = true;
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    document.getElementById("live").hidden = true;
    body.setAttribute("data-polling", "off");
  }

  function renderUpdated(asOf) {
    // When the node read the view, in the same format and local time as the steps (not the browser's clock)
    var updated = document.getElementById("updated");
    updated.textContent = displayTime(asOf);
    updated.setAttribute("datetime", asOf);
  }

  function update(track) {
    renderStatus(track.status);
    renderUpdated(track.as_of);
    var next = signature(track.timeline);
    if (next === seen) {
      return;
    }
    var grew = track.timeline.length > document.querySelectorAll("#timeline > li").length;
    seen = next;
    renderTimeline(track.timeline);
    renderOffices(track.timeline);
    renderPosition(track);
    if (grew) {
      addAlert(track);
    }
  }

  function poll() {
    timer = null;
    if (document.hidden) {
      schedule();
      return;
    }
    fetch(config.api, { headers: { Accept: "application/json" }, cache: "no-store", credentials: "omit" })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (track) {
        update(track);
        if (track.final) {
          stop();
        } else {
          setLive(true);
        }
      })
      .catch(function () {
        setLive(false);
      })
      .then(schedule);
  }

  function schedule() {
    if (timer === null && !stopped) {
      timer = window.setTimeout(poll, (config.poll || 2.5) * 1000);
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && timer !== null && !stopped) {
      window.clearTimeout(timer);
      timer = null;
      poll();
    }
  });
  schedule();
})();
