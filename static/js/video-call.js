// The customer's side of a video-guidance call: one tap asks for the rear camera and joins.
// Works by feature detection (no user-agent sniffing); where live video cannot work the page
// says so and offers a photo or short video instead.
"use strict";
(function () {
  var root = document.getElementById("video-call");
  if (!root) { return; }
  var d = root.dataset;
  var statusEl = document.getElementById("video-status");
  var joinBtn = document.getElementById("video-join");
  var stage = document.getElementById("video-stage");
  var localVideo = document.getElementById("local-video");
  var agentAudio = document.getElementById("agent-audio");
  var agentVideo = document.getElementById("agent-video");
  var ICE_LIMIT_MS = 15000;
  var pc = null, stream = null, facing = "environment", over = false, live = false;
  var iceServers = [];
  window.kefuVideo = { pc: null, tapAt: null };

  function say(key) { statusEl.textContent = d[key] || key; statusEl.dataset.state = key; }

  function post(url, data) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": d.csrf },
      body: JSON.stringify(data || {})
    });
  }

  function canVideo() {
    return !!(window.RTCPeerConnection && navigator.mediaDevices &&
      navigator.mediaDevices.getUserMedia);
  }

  function fallback(key) {
    over = true;
    document.getElementById("video-fallback").hidden = false;
    document.getElementById("video-fallback-reason").textContent = d[key];
    say(key);
    joinBtn.hidden = true;
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    if (pc) { pc.close(); }
  }

  function camera(mode) {
    return navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: mode }, width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: true
    });
  }

  function gathered(conn) {
    return new Promise(function (resolve) {
      if (conn.iceGatheringState === "complete") { resolve(); return; }
      conn.addEventListener("icegatheringstatechange", function () {
        if (conn.iceGatheringState === "complete") { resolve(); }
      });
      setTimeout(resolve, 5000);
    });
  }

  function waitForOffer(first) {
    if (first) { return Promise.resolve(first); }
    return new Promise(function (resolve, reject) {
      (function tick() {
        if (over) { reject(new Error("over")); return; }
        fetch(d.offer, { credentials: "same-origin" }).then(function (r) {
          if (r.status === 204) { setTimeout(tick, 700); return null; }
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        }).then(function (body) { if (body) { resolve(body); } }).catch(reject);
      })();
    });
  }

  function join() {
    window.kefuVideo.tapAt = Date.now();
    if (d.recording && !document.getElementById("video-consent").checked) {
      say("msgConsent"); return;
    }
    if (!canVideo()) { post(d.event, { event: "unsupported" }); fallback("msgUnsupported"); return; }
    joinBtn.disabled = true;
    say("msgStarting");
    // Asked from the tap itself: mobile browsers only prompt for the camera on a user gesture.
    camera(facing).then(function (s) {
      stream = s;
      localVideo.srcObject = stream;
      stage.hidden = false;
      joinBtn.hidden = true;
      return post(d.join, { consent: true }).then(function (r) {
        return r.json().then(function (body) {
          if (!r.ok) { throw new Error(body.message || "join"); }
          return body;
        });
      });
    }, function (err) {
      var denied = err && (err.name === "NotAllowedError" || err.name === "SecurityError");
      post(d.join, { consent: true }).then(function () {
        post(d.event, { event: denied ? "camera_denied" : "unsupported" });
      });
      fallback(denied ? "msgDenied" : "msgUnsupported");
      throw err;
    }).then(function (joined) {
      say("msgWaiting");
      iceServers = joined.ice_servers || [];
      return negotiate(joined.offer ? { sdp: joined.offer, version: joined.version } : null);
    }).catch(function (err) {
      if (!over && err && err.message) { statusEl.textContent = err.message; }
    });
  }

  // One offer, one answer. When the agent replaced the offer meanwhile (their own camera), the
  // relay refuses the answer as stale and the page answers the current offer instead.
  function negotiate(first) {
    if (pc) { pc.close(); }
    pc = new RTCPeerConnection({ iceServers: iceServers });
    window.kefuVideo.pc = pc;
    var conn = pc;
    conn.ontrack = function (ev) {
      if (ev.track.kind === "audio") { agentAudio.srcObject = new MediaStream([ev.track]); }
      else { agentVideo.srcObject = new MediaStream([ev.track]); agentVideo.hidden = false; }
    };
    conn.oniceconnectionstatechange = function () {
      var st = conn.iceConnectionState;
      if ((st === "connected" || st === "completed") && !live && conn === pc) {
        live = true; say("msgLive"); post(d.event, { event: "connected" });
        watchEnd();
      }
    };
    var version = null;
    return waitForOffer(first).then(function (offer) {
      version = offer.version;
      return conn.setRemoteDescription({ type: "offer", sdp: offer.sdp });
    }).then(function () {
      // The agent's offer receives video (and sends it only when the agent turned their own
      // camera on) and sends and receives audio: the camera goes on the video transceiver and
      // the microphone on the audio one; the answer narrows "sendrecv" to what was offered.
      conn.getTransceivers().forEach(function (t) {
        var kind = t.receiver.track && t.receiver.track.kind;
        var track = kind === "video" ? stream.getVideoTracks()[0] : stream.getAudioTracks()[0];
        if (track) { t.sender.replaceTrack(track); }
        t.direction = "sendrecv";
        if (t.sender.setStreams) { t.sender.setStreams(stream); }
      });
      return conn.createAnswer();
    }).then(function (answer) {
      return conn.setLocalDescription(answer);
    }).then(function () {
      say("msgConnecting");
      return gathered(conn);
    }).then(function () {
      return post(d.answer, { sdp: conn.localDescription.sdp, version: version });
    }).then(function (r) {
      if (r.status === 409) { return negotiate(null); }
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      setTimeout(function () {
        if (!live && !over && conn === pc) { post(d.event, { event: "failed" }); fallback("msgFailed"); }
      }, ICE_LIMIT_MS);
    });
  }

  // The agent may hang up first: the relay then answers 410 and the page says the call is over.
  function watchEnd() {
    var timer = setInterval(function () {
      if (over) { clearInterval(timer); return; }
      fetch(d.offer, { credentials: "same-origin" }).then(function (r) {
        if (r.status === 410) { clearInterval(timer); endHere(); }
      }).catch(function () {});
    }, 2000);
  }

  function endHere() {
    over = true;
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); }
    if (pc) { pc.close(); }
    stage.hidden = true;
    joinBtn.hidden = true;
    say("msgEnded");
  }

  joinBtn.addEventListener("click", join);

  document.getElementById("video-switch").addEventListener("click", function () {
    if (!stream || !pc) { return; }
    facing = facing === "environment" ? "user" : "environment";
    var old = stream.getVideoTracks()[0];
    navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: facing } } }).then(function (s) {
      var track = s.getVideoTracks()[0];
      pc.getSenders().forEach(function (sender) {
        if (sender.track && sender.track.kind === "video") { sender.replaceTrack(track); }
      });
      stream.removeTrack(old); old.stop(); stream.addTrack(track);
      localVideo.srcObject = stream;
    }).catch(function () {});
  });

  document.getElementById("video-mute").addEventListener("click", function (ev) {
    if (!stream) { return; }
    var track = stream.getAudioTracks()[0];
    if (!track) { return; }
    track.enabled = !track.enabled;
    ev.target.textContent = track.enabled ? d.msgMute : d.msgUnmute;
  });

  document.getElementById("video-hangup").addEventListener("click", function () {
    post(d.event, { event: "hangup" });
    endHere();
  });

  var form = document.getElementById("video-upload-form");
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var result = document.getElementById("video-upload-result");
    var file = ["video-photo", "video-clip"].map(function (id) {
      return document.getElementById(id).files[0];
    }).filter(Boolean)[0];
    if (!file) { return; }
    var body = new FormData();
    body.append("file", file, file.name);
    result.textContent = d.msgSending;
    fetch(d.upload, {
      method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": d.csrf }, body: body
    }).then(function (r) {
      return r.json().catch(function () { return { ok: false, message: d.msgUploadFailed }; });
    }).then(function (res) {
      result.textContent = res.message || "";
      result.className = res.ok ? "ok" : "error";
      if (res.ok) { form.reset(); }
    });
  });

  if (!canVideo()) { fallback("msgUnsupported"); }
})();
