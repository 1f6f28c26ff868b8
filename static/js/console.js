// Console pages: the live queue and the conversation poll for changes; they work without it.
"use strict";
(function () {
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  // Polling with a cursor: every answer carries the whole current queue, so after a dropped
  // connection or a sleeping laptop the next successful poll shows exactly what was missed.
  function poll(url, every, onData, onError) {
    var timer = null, delay = every;
    function tick() {
      fetch(url(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 401 || r.redirected) { window.location.reload(); throw new Error("signed out"); }
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        })
        .then(function (data) { delay = every; onData(data); })
        .catch(function () { delay = Math.min(delay * 2, 30000); if (onError) { onError(); } })
        .then(function () { timer = setTimeout(tick, delay); });
    }
    timer = setTimeout(tick, every);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { clearTimeout(timer); tick(); }
    });
  }

  function queueRow(row, minutes) {
    var wait = Math.floor(row.waiting_seconds / 60);
    return '<li class="qrow sla-' + esc(row.sla) + '" data-id="' + row.id + '"><a href="' + esc(row.url) + '">' +
      '<span class="badge sla-' + esc(row.sla) + '">' + esc(row.sla_label) + "</span>" +
      '<span class="reason">' + esc(row.reason_label) + "</span>" +
      '<span class="wait">' + wait + " " + esc(minutes) + "</span>" +
      (row.assignee ? '<span class="owner">→ ' + esc(row.assignee) + "</span>" : "") +
      (row.viewers.length ? '<span class="viewers">👁 ' + esc(row.viewers.join("、")) + "</span>" : "") +
      '<span class="last">' + esc(row.last_message ? row.last_message.text : "") + "</span></a></li>";
  }

  function renderList(el, rows, empty, minutes, fresh) {
    el.innerHTML = rows.length
      ? rows.map(function (r) { return queueRow(r, minutes); }).join("")
      : '<li class="empty">' + esc(empty) + "</li>";
    fresh.forEach(function (id) {
      var li = el.querySelector('[data-id="' + id + '"]');
      if (li) { li.classList.add("fresh"); }
    });
  }

  function queuePage(root) {
    var cursor = parseInt(root.dataset.cursor || "0", 10);
    var live = document.getElementById("live");
    var base = document.title;
    poll(function () { return root.dataset.poll + "?since=" + cursor; }, 3000, function (data) {
      renderList(document.getElementById("waiting"), data.waiting, root.dataset.labelEmpty,
        root.dataset.labelMinutes, data["new"]);
      renderList(document.getElementById("mine"), data.mine, root.dataset.labelMineEmpty,
        root.dataset.labelMinutes, []);
      document.getElementById("waiting-count").textContent = data.waiting.length;
      document.title = (data.waiting.length ? "(" + data.waiting.length + ") " : "") + base;
      live.textContent = data["new"].length ? root.dataset.labelNew + " × " + data["new"].length : "";
      cursor = data.cursor;
    }, function () { live.textContent = root.dataset.labelOffline; });
  }

  function chatPage(root) {
    var list = document.getElementById("transcript");
    var after = parseInt(root.dataset.after || "0", 10);
    function photoHtml(photo) {
      if (!photo) { return ""; }
      if (!photo.url) { return '<p class="photo"><span class="muted">' + esc(photo.label) + "</span></p>"; }
      return '<p class="photo"><a href="' + esc(photo.url) + '" target="_blank" rel="noopener" title="' +
        esc(photo.label) + '"><img src="' + esc(photo.thumb_url) + '" alt="' + esc(root.dataset.labelPhoto) +
        '" loading="lazy"></a></p>';
    }
    function lineHtml(line) {
      var who = line.from === "user" ? root.dataset.labelUser : line.from === "bot" ? root.dataset.labelBot : line.agent;
      return '<li class="line from-' + esc(line.from) + '" data-id="' + line.id + '"><span class="who">' + esc(who) +
        '</span><time datetime="' + esc(line.at) + '">' + esc(line.time) + '</time><p class="text">' +
        esc(line.text) + "</p>" + photoHtml(line.photo) + (line.delivery ? '<p class="delivery ' + esc(line.delivery) + '">' +
        esc(line.delivery_label) + "</p>" : "") + "</li>";
    }
    list.scrollTop = list.scrollHeight;
    poll(function () { return root.dataset.poll + "?after=" + after; }, 2500, function (data) {
      var grew = false;
      data.lines.forEach(function (line) {
        var old = list.querySelector('[data-id="' + line.id + '"]');
        if (old) { old.outerHTML = lineHtml(line); return; }
        list.insertAdjacentHTML("beforeend", lineHtml(line));
        grew = true;
        after = Math.max(after, line.id);
      });
      if (grew) { list.scrollTop = list.scrollHeight; }
      var viewers = document.getElementById("viewers");
      if (viewers) { viewers.textContent = data.viewers.length ? "👁 " + data.viewers.join("、") : ""; }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var queue = document.getElementById("queue");
    if (queue) { queuePage(queue); }
    var chat = document.getElementById("chat");
    if (chat) { chatPage(chat); }
    var canned = document.getElementById("canned");
    if (canned) {
      canned.addEventListener("change", function () {
        var target = document.getElementById(canned.dataset.target);
        if (canned.value && target) { target.value = (target.value ? target.value + "\n" : "") + canned.value; target.focus(); }
        canned.value = "";
      });
    }
  });
})();
