// The agent's side of a video-guidance call. kefu relays one complete offer and one complete
// answer over plain HTTP (ICE gathering finished first, no trickle); media goes peer to peer.
"use strict";
(function () {
  var panel = document.getElementById("video-panel");
  if (!panel) { return; }
  var d = panel.dataset;
  var csrf = document.body.dataset.csrf;
  var statusEl = document.getElementById("video-status");
  var deliveryEl = document.getElementById("video-delivery");
  var remoteVideo = document.getElementById("remote-video");
  var remoteAudio = document.getElementById("remote-audio");
  var snapBtn = document.getElementById("video-snapshot");
  var muteBtn = document.getElementById("video-mute");
  var hangBtn = document.getElementById("video-hangup");
  var ICE_LIMIT_MS = 15000;
  var pc = null, mic = null, answered = false, live = false, over = false, timer = null;
  var recorder = null, seq = 0, videoTransceiver = null, ready = null, ownCamera = null;
  var joined = false;
  // Measured by benchmarks/video_signalling.py: when the answer arrived, when the first frame showed.
  window.kefuVideo = { pc: null, answerAt: null, firstFrameAt: null, offers: 0 };

  function say(key) { statusEl.textContent = d[key] || key; statusEl.dataset.state = key; }

  function send(url, body, type) {
    var headers = { "X-CSRFToken": csrf };
    if (type) { headers["Content-Type"] = type; }
    return fetch(url, { method: "POST", credentials: "same-origin", headers: headers, body: body });
  }
  function postJson(url, data) { return send(url, JSON.stringify(data || {}), "application/json"); }

  // Complete ICE gathering: the SDP then carries every candidate and one exchange is enough.
  function gathered(conn) {
    return new Promise(function (resolve) {
      if (conn.iceGatheringState === "complete") { resolve(); return; }
      var done = function () { if (conn.iceGatheringState === "complete") { resolve(); } };
      conn.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 5000); // what was gathered by then is used
    });
  }

  function start() {
    if (typeof RTCPeerConnection === "undefined") { say("msgFailed"); return; }
    pc = new RTCPeerConnection({ iceServers: JSON.parse(d.ice || "[]") });
    window.kefuVideo.pc = pc;
    // The customer's camera and microphone come in; the agent's own camera stays off.
    videoTransceiver = pc.addTransceiver("video", { direction: "recvonly" });
    var withMic = navigator.mediaDevices && navigator.mediaDevices.getUserMedia
      ? navigator.mediaDevices.getUserMedia({ audio: true }).catch(function () { return null; })
      : Promise.resolve(null);
    return withMic.then(function (stream) {
      mic = stream;
      if (mic) {
        pc.addTransceiver(mic.getAudioTracks()[0], { direction: "sendrecv", streams: [mic] });
      } else {
        pc.addTransceiver("audio", { direction: "recvonly" });
        document.getElementById("video-recording-state").textContent = d.msgNomic;
      }
      pc.ontrack = function (ev) {
        if (ev.track.kind === "video") {
          remoteVideo.srcObject = new MediaStream([ev.track]);
          watchFirstFrame();
        } else {
          remoteAudio.srcObject = new MediaStream([ev.track]);
        }
      };
      pc.oniceconnectionstatechange = function () {
        var s = pc.iceConnectionState;
        if ((s === "connected" || s === "completed") && !live) { becameLive(); }
        if (s === "failed" && !over) { say("msgFailed"); }
      };
      return sendOffer();
    }).then(function () { poll(); });
  }

  function sendOffer() {
    return pc.createOffer().then(function (offer) {
      return pc.setLocalDescription(offer);
    }).then(function () {
      return gathered(pc);
    }).then(function () {
      return postJson(d.offer, { sdp: pc.localDescription.sdp });
    }).then(function () { window.kefuVideo.offers += 1; });
  }

  // The agent's own camera is optional; it can be added while the customer has not joined yet
  // (a new offer replaces the stored one; afterwards the offer is already answered).
  document.getElementById("video-own-camera").addEventListener("click", function (ev) {
    if (ownCamera || joined || answered || !ready) { return; }
    ev.target.disabled = true;
    navigator.mediaDevices.getUserMedia({ video: true }).then(function (cam) {
      ownCamera = cam;
      var own = document.getElementById("own-video");
      own.srcObject = cam;
      own.hidden = false;
      ready = ready.then(function () {
        videoTransceiver.sender.replaceTrack(cam.getVideoTracks()[0]);
        videoTransceiver.direction = "sendrecv";
        return sendOffer();
      });
    }).catch(function () { ev.target.disabled = false; });
  });

  function watchFirstFrame() {
    var mark = function () {
      if (!window.kefuVideo.firstFrameAt) { window.kefuVideo.firstFrameAt = Date.now(); }
      snapBtn.disabled = false;
    };
    if (remoteVideo.requestVideoFrameCallback) { remoteVideo.requestVideoFrameCallback(mark); }
    else { remoteVideo.addEventListener("loadeddata", mark, { once: true }); }
  }

  function becameLive() {
    live = true;
    say("msgLive");
    postJson(d.connected);
    if (d.recording) { startRecording(); }
  }

  function poll() {
    if (over) { return; }
    fetch(d.state, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.delivery && s.delivery.label) {
          deliveryEl.textContent = deliveryEl.textContent.split("：")[0] + "：" + s.delivery.label;
          deliveryEl.className = "delivery " + (s.delivery["class"] || "");
        }
        if (s.status === "ended") { finish(false); say("msgEnded"); return; }
        if (s.expired) { say("msgExpired"); }
        else if (!live && !answered && s.status === "joined") { say("msgConnecting"); }
        if (s.status !== "created") {
          joined = true;
          document.getElementById("video-own-camera").disabled = true;
        }
        if (s.answer && !answered) {
          answered = true;
          window.kefuVideo.answerAt = Date.now();
          say("msgConnecting");
          pc.setRemoteDescription({ type: "answer", sdp: s.answer });
          setTimeout(function () { if (!live && !over) { say("msgFailed"); } }, ICE_LIMIT_MS);
        }
      })
      .catch(function () {})
      // Faster while the customer's answer is due (they joined): it decides the setup time.
      .then(function () { timer = setTimeout(poll, live ? 3000 : (joined && !answered ? 250 : 700)); });
  }

  // MediaRecorder on the incoming tracks; each chunk is uploaded as it is produced.
  function startRecording() {
    if (typeof MediaRecorder === "undefined" || !remoteVideo.srcObject) { return; }
    var tracks = remoteVideo.srcObject.getTracks().slice();
    if (remoteAudio.srcObject) { tracks = tracks.concat(remoteAudio.srcObject.getTracks()); }
    try { recorder = new MediaRecorder(new MediaStream(tracks), { mimeType: "video/webm" }); }
    catch (e) { recorder = new MediaRecorder(new MediaStream(tracks)); }
    recorder.ondataavailable = function (ev) {
      if (ev.data && ev.data.size) { send(d.recording + "?seq=" + (seq++), ev.data, "video/webm"); }
    };
    recorder.start(4000);
    document.getElementById("video-recording-state").textContent = d.msgRecording;
  }

  // Snapshot: the current frame goes onto a canvas where the agent can mark the problem (red
  // strokes), then it is saved with the ticket and the conversation.
  var canvas = document.getElementById("video-canvas");
  var markup = document.getElementById("video-markup");
  var drawing = false;
  snapBtn.addEventListener("click", function () {
    canvas.width = remoteVideo.videoWidth;
    canvas.height = remoteVideo.videoHeight;
    canvas.getContext("2d").drawImage(remoteVideo, 0, 0);
    markup.hidden = false;
    markup.scrollIntoView({ block: "nearest" });
  });
  function point(ev) {
    var box = canvas.getBoundingClientRect();
    return [(ev.clientX - box.left) * canvas.width / box.width,
            (ev.clientY - box.top) * canvas.height / box.height];
  }
  canvas.addEventListener("pointerdown", function (ev) {
    drawing = true;
    var ctx = canvas.getContext("2d"), p = point(ev);
    ctx.strokeStyle = "#ff2d2d";
    ctx.lineWidth = Math.max(3, canvas.width / 150);
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(p[0], p[1]);
  });
  canvas.addEventListener("pointermove", function (ev) {
    if (!drawing) { return; }
    var ctx = canvas.getContext("2d"), p = point(ev);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
  });
  window.addEventListener("pointerup", function () { drawing = false; });
  document.getElementById("video-markup-cancel").addEventListener("click", function () {
    markup.hidden = true;
  });
  document.getElementById("video-markup-save").addEventListener("click", function () {
    canvas.toBlob(function (blob) {
      var form = new FormData();
      form.append("image", blob, "snapshot.jpg");
      send(d.snapshot, form).then(function (r) { return r.json(); }).then(function (res) {
        if (!res.url) { statusEl.textContent = res.message || ""; return; }
        var img = document.createElement("img");
        img.className = "thumb";
        img.src = res.url;
        img.alt = d.msgSaved + " #" + res.id;
        document.getElementById("video-snapshots").appendChild(img);
        markup.hidden = true;
        document.getElementById("video-recording-state").textContent = d.msgSaved;
      });
    }, "image/jpeg", 0.9);
  });

  muteBtn.addEventListener("click", function () {
    if (!mic) { return; }
    var track = mic.getAudioTracks()[0];
    track.enabled = !track.enabled;
    muteBtn.textContent = track.enabled ? muteBtn.dataset.on : muteBtn.dataset.off;
  });

  function finish(tell) {
    if (over) { return; }
    over = true;
    clearTimeout(timer);
    if (recorder && recorder.state !== "inactive") { recorder.stop(); }
    if (tell) { postJson(d.end, { reason: "agent_hangup" }); }
    if (mic) { mic.getTracks().forEach(function (t) { t.stop(); }); }
    if (ownCamera) { ownCamera.getTracks().forEach(function (t) { t.stop(); }); }
    if (pc) { pc.close(); }
    snapBtn.disabled = true;
  }

  hangBtn.addEventListener("click", function () { finish(true); say("msgEnded"); });
  remoteAudio.addEventListener("click", function () { remoteAudio.play(); });

  if (d.status === "ended") { say("msgEnded"); over = true; return; }
  ready = start();
})();
