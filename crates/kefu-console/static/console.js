// Kefu staff console: live updates and small conveniences. Served from the binary (the
// Content Security Policy allows no inline script). Every page works without it.
//
// A live page subscribes to a server-sent event stream; each event carries the version of what
// the page shows. When it differs from the version on the page, the script fetches the
// server-rendered fragment and swaps it in.
(function () {
  "use strict";

  function setStatus(text, cls) {
    var el = document.getElementById("live-status");
    if (!el) { return; }
    el.textContent = text;
    el.className = "live-status " + cls;
  }

  // Fetches an HTML fragment; a redirect (the session ended) goes to the login page.
  function fetchFragment(url) {
    return fetch(url, { credentials: "same-origin", redirect: "manual", cache: "no-store" })
      .then(function (r) {
        if (r.type === "opaqueredirect" || r.status === 401 || r.status === 303) {
          window.location.assign("/login");
          return null;
        }
        if (!r.ok) { return null; }
        return r.text();
      });
  }

  function parse(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  // Subscribes to `url`; `onVersion(version)` is called for every change event.
  function subscribe(url, onVersion) {
    if (!window.EventSource) { return; }
    var source = new EventSource(url);
    source.addEventListener("open", function () { setStatus("live", "on"); });
    source.addEventListener("change", function (e) { onVersion(e.data); });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) {
        setStatus("live updates stopped — reload the page", "off");
      } else {
        setStatus("reconnecting…", "");
      }
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // Runs `task` now, or once the running one finished (one fetch at a time, the last wins).
  function serial(task) {
    var running = false, again = false;
    return function run() {
      if (running) { again = true; return; }
      running = true;
      Promise.resolve(task()).catch(function () {}).then(function () {
        running = false;
        if (again) { again = false; run(); }
      });
    };
  }

  function queuePage(table) {
    var filters = document.getElementById("filters");
    if (filters) {
      Array.prototype.forEach.call(filters.querySelectorAll("select"), function (s) {
        s.addEventListener("change", function () { filters.submit(); });
      });
    }
    var query = window.location.search;
    var refresh = serial(function () {
      return fetchFragment("/queue/rows" + query).then(function (html) {
        if (html === null) { return; }
        var body = parse(html).querySelector("tbody");
        var current = table.querySelector("tbody");
        if (body && current) { current.replaceWith(body); }
      });
    });
    subscribe("/events/queue" + query, function (version) {
      var current = table.querySelector("tbody");
      if (current && current.getAttribute("data-version") === version) { return; }
      refresh();
    });
  }

  function ticketPage(transcript) {
    var match = window.location.pathname.match(/^\/tickets\/(\d+)/);
    if (!match) { return; }
    var id = match[1];
    var scrollDown = function () { transcript.scrollTop = transcript.scrollHeight; };
    scrollDown();
    var refresh = serial(function () {
      return fetchFragment("/tickets/" + id + "/live").then(function (html) {
        if (html === null) { return; }
        var fragment = parse(html);
        var current = document.getElementById("transcript");
        var atBottom = current && (current.scrollHeight - current.scrollTop - current.clientHeight < 40);
        ["state", "holder", "transcript"].forEach(function (part) {
          var fresh = fragment.getElementById ? fragment.getElementById(part) : fragment.querySelector("#" + part);
          var old = document.getElementById(part);
          if (fresh && old) { old.replaceWith(fresh); }
        });
        transcript = document.getElementById("transcript") || transcript;
        if (atBottom) { transcript.scrollTop = transcript.scrollHeight; }
      });
    });
    subscribe("/events/tickets/" + id, function (version) {
      var current = document.getElementById("transcript");
      if (current && current.getAttribute("data-version") === version) { return; }
      refresh();
    });
    // Ctrl+Enter (or Cmd+Enter) sends the reply.
    var text = document.querySelector("#reply textarea[name=text]");
    if (text) {
      text.addEventListener("keydown", function (e) {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
          e.preventDefault();
          var form = document.getElementById("reply");
          if (form.requestSubmit) { form.requestSubmit(); } else { form.submit(); }
        }
      });
    }
  }

  function start() {
    var table = document.getElementById("queue");
    if (table) { queuePage(table); }
    var transcript = document.getElementById("transcript");
    if (transcript) { ticketPage(transcript); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
