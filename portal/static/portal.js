// OpsSeer portal: live durations on every page, and the live timeline of the incident page.
// Data from the server is only ever written with textContent or attributes, never as HTML.
"use strict";

(function () {
  var RECONNECT_MIN_MS = 2000;
  var RECONNECT_MAX_MS = 60000;
  var ATTACHMENT_PATH = /^\/api\/v1\/attachments\/[0-9]+$/;
  // Same list as audio_kinds in portal/templating.py: their attachment is a call recording, not an image.
  var AUDIO_KINDS = ["recording", "transcript", "transcription"];

  // Same output as format_duration in functions/timeline.py.
  function formatDuration(seconds) {
    var whole = Math.max(0, Math.floor(seconds));
    var parts = [
      [Math.floor(whole / 86400), "d"],
      [Math.floor((whole % 86400) / 3600), "h"],
      [Math.floor((whole % 3600) / 60), "m"],
      [whole % 60, "s"],
    ];
    var largestUnits = parts.filter(function (part) { return part[0] > 0; }).slice(0, 2);
    return largestUnits.map(function (part) { return part[0] + part[1]; }).join(" ") || "0s";
  }

  // Same output as format_time in portal/templating.py.
  function formatTime(iso) {
    var date = new Date(iso);
    if (isNaN(date.getTime())) { return "–"; }
    return date.toISOString().slice(0, 19).replace("T", " ") + " UTC";
  }

  // Same rule as css_token in portal/templating.py.
  function cssToken(value) {
    return String(value).toLowerCase().replace(/[^a-z0-9_-]/g, "-").slice(0, 32) || "unknown";
  }

  function sortKeys(value) {
    if (Array.isArray(value)) { return value.map(sortKeys); }
    if (value !== null && typeof value === "object") {
      var sorted = {};
      Object.keys(value).sort().forEach(function (key) { sorted[key] = sortKeys(value[key]); });
      return sorted;
    }
    return value;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  // Same output as format_offset in functions/timeline.py.
  function formatOffset(seconds) {
    if (typeof seconds !== "number" || !isFinite(seconds)) { return "–"; }
    var whole = Math.max(0, Math.floor(seconds));
    var hours = Math.floor(whole / 3600);
    var minutes = Math.floor((whole % 3600) / 60);
    var secs = whole % 60;
    var pad = function (value) { return (value < 10 ? "0" : "") + value; };
    return hours ? hours + ":" + pad(minutes) + ":" + pad(secs) : minutes + ":" + pad(secs);
  }

  function timeElement(iso) {
    var node = element("time", null, formatTime(iso));
    node.setAttribute("datetime", iso);
    return node;
  }

  function tickDurations() {
    var now = Date.now();
    document.querySelectorAll("[data-duration-since]").forEach(function (node) {
      var since = Date.parse(node.getAttribute("data-duration-since"));
      var untilText = node.getAttribute("data-duration-until");
      // An empty end time means a resolved incident whose resolve time is unknown: keep the server's text.
      if (untilText === "") { return; }
      var until = untilText ? Date.parse(untilText) : now;
      if (isNaN(since) || isNaN(until)) { return; }
      node.textContent = formatDuration((until - since) / 1000);
    });
  }

  // Build the same markup as the timeline_entry macro in templates/macros.html.
  function renderEntry(entry) {
    var item = element("li", "entry entry--" + cssToken(entry.status));
    var audio = AUDIO_KINDS.indexOf(entry.kind) >= 0;
    var payload = entry.payload;
    item.id = "entry-" + entry.id;
    item.setAttribute("data-entry-id", String(entry.id));
    item.setAttribute("data-kind", cssToken(entry.kind));

    var head = element("div", "entry__head");
    head.appendChild(element("span", "entry__kind", String(entry.kind).split("_").join(" ")));
    head.appendChild(element("span", "pill pill--" + cssToken(entry.status), String(entry.status).split("_").join(" ")));
    head.appendChild(entry.occurred_at ? timeElement(entry.occurred_at) : document.createTextNode("–"));
    item.appendChild(head);
    if (entry.kind === "transcript" && payload !== null && typeof payload === "object" && "text" in payload) {
      var line = element("p", "entry__transcript");
      line.appendChild(element("span", "entry__offset", formatOffset(payload.start)));
      line.appendChild(document.createTextNode(" " + String(payload.text)));
      item.appendChild(line);
    } else {
      item.appendChild(element("p", "entry__title", entry.title));
    }
    var hasAttachment = typeof entry.attachment_url === "string" && ATTACHMENT_PATH.test(entry.attachment_url);
    if (audio && hasAttachment && entry.kind !== "transcript") {
      var download = element("p", "entry__recording");
      var anchor = element("a", null, "Download the recording");
      anchor.href = entry.attachment_url;
      download.appendChild(anchor);
      item.appendChild(download);
    }
    if (entry.model) {
      item.appendChild(element("p", "entry__model", "Model: " + entry.model));
    }

    if (!audio && hasAttachment) {
      var figure = element("figure", "entry__snapshot");
      var link = element("a");
      link.href = entry.attachment_url;
      link.target = "_blank";
      link.rel = "noopener";
      var image = element("img");
      image.src = entry.attachment_url;
      image.alt = "Metric snapshot: " + entry.title;
      image.loading = "lazy";
      link.appendChild(image);
      figure.appendChild(link);
      item.appendChild(figure);
    }

    if (payload !== null && typeof payload === "object" && Object.keys(payload).length > 0) {
      var details = element("details", "entry__payload");
      details.appendChild(element("summary", null, "Details"));
      details.appendChild(element("pre", null, JSON.stringify(sortKeys(payload), null, 2)));
      item.appendChild(details);
    }
    return item;
  }

  // Insert in id order: an entry whose transaction committed late can arrive after entries with larger ids.
  function insertEntry(timeline, entry) {
    if (document.getElementById("entry-" + entry.id)) { return false; }
    var item = renderEntry(entry);
    item.classList.add("entry--new");
    var items = timeline.querySelectorAll("[data-entry-id]");
    for (var index = 0; index < items.length; index++) {
      if (Number(items[index].getAttribute("data-entry-id")) > entry.id) {
        timeline.insertBefore(item, items[index]);
        return true;
      }
    }
    timeline.appendChild(item);
    return true;
  }

  function setTimeCell(cell, iso) {
    if (!cell) { return; }
    cell.textContent = "";
    cell.appendChild(iso ? timeElement(iso) : document.createTextNode("–"));
  }

  function applyIncidentState(root, state) {
    root.querySelectorAll(".incident-head [data-role=status]").forEach(function (badge) {
      badge.textContent = state.status;
      badge.className = "badge badge--" + cssToken(state.status);
    });

    var stale = root.querySelector(".incident-head [data-role=stale]");
    if (stale) { stale.hidden = !state.stale; }

    var duration = root.querySelector("[data-role=duration]");
    if (duration && state.last_started_at) {
      duration.setAttribute("data-duration-since", state.last_started_at);
      if (state.status === "resolved" && state.resolved_at) {
        duration.setAttribute("data-duration-until", state.resolved_at);
      } else {
        duration.removeAttribute("data-duration-until");
      }
    }
    setTimeCell(root.querySelector("[data-role=last-started]"), state.last_started_at);
    setTimeCell(root.querySelector("[data-role=resolved-at]"), state.status === "resolved" ? state.resolved_at : null);

    // NOTE: only the episode count is live. The episodes table shows a new episode after a reload.
    var count = root.querySelector("[data-role=episode-count]");
    if (count) { count.textContent = String(state.episode_count); }
    tickDurations();
  }

  function followIncident(root) {
    var baseUrl = root.getAttribute("data-events-url");
    var timeline = root.querySelector("[data-role=timeline]");
    var emptyNote = root.querySelector("[data-role=timeline-empty]");
    var live = root.querySelector("[data-role=live]");
    var lastId = 0;
    var reconnectDelay = RECONNECT_MIN_MS;

    timeline.querySelectorAll("[data-entry-id]").forEach(function (item) {
      lastId = Math.max(lastId, Number(item.getAttribute("data-entry-id")));
    });

    function setLive(text, modifier) {
      if (!live) { return; }
      live.textContent = text;
      live.className = "live" + (modifier ? " live--" + modifier : "");
    }

    function connect() {
      var url = baseUrl.replace(/after_id=[0-9]*/, "after_id=" + lastId);
      var source = new EventSource(url);

      source.onopen = function () {
        reconnectDelay = RECONNECT_MIN_MS;
        setLive("live", "connected");
      };
      source.addEventListener("timeline", function (event) {
        var entry = JSON.parse(event.data);
        if (insertEntry(timeline, entry) && emptyNote) { emptyNote.hidden = true; }
        lastId = Math.max(lastId, entry.id);
      });
      source.addEventListener("incident", function (event) {
        applyIncidentState(root, JSON.parse(event.data));
      });
      source.onerror = function () {
        if (source.readyState !== EventSource.CLOSED) {
          // The browser reconnects by itself and sends Last-Event-ID.
          setLive("reconnecting…", "disconnected");
          return;
        }
        // The server responded with an error status, so the browser stopped reconnecting. Reconnect here with backoff.
        source.close();
        setLive("disconnected, retrying in " + Math.round(reconnectDelay / 1000) + " s", "disconnected");
        window.setTimeout(connect, reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, RECONNECT_MAX_MS);
      };
    }

    if (typeof EventSource === "undefined") {
      setLive("live updates unavailable in this browser", "disconnected");
      return;
    }
    connect();
  }

  document.addEventListener("DOMContentLoaded", function () {
    tickDurations();
    window.setInterval(tickDurations, 1000);
    var root = document.querySelector("main[data-events-url]");
    if (root) { followIncident(root); }
  });
})();
