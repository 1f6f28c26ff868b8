"""The video signalling with real WebRTC peers in Python (aiortc), no browser: the agent's offer
and the customer's answer go through kefu's HTTP relay, and the customer's camera frames
arrive at the agent."""

from __future__ import annotations

import asyncio
import fractions
import gc
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from av import VideoFrame
from flask import Flask
from flask.testing import FlaskClient

from kefu import audit
from kefu.extensions import db
from kefu.video import VideoSession
from tests.conftest import FakeWeChat
from tests.wechat_api import FakeWeChatApi

from .conftest import new_client
from .test_video import csrf_header, start_call

aiortc = pytest.importorskip("aiortc")


class Camera(aiortc.VideoStreamTrack):  # type: ignore[misc, name-defined]
    """A phone camera pointed at a device: numbered grey frames at 30 fps."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        self.count += 1
        shade = (self.count * 7) % 255
        frame = VideoFrame.from_ndarray(np.full((240, 320, 3), shade, np.uint8), format="rgb24")
        frame.pts, frame.time_base = pts, time_base or fractions.Fraction(1, 90000)
        return frame


async def call(app: Flask, console: FlaskClient, session_id: int, link: str) -> dict[str, int]:
    agent_headers = csrf_header(console, f"/console/video/{session_id}")
    phone = new_client(app)
    phone.get(link)
    customer_headers = csrf_header(phone, link)

    # The agent: receives video, sends and receives audio (as the console's panel does).
    agent = aiortc.RTCPeerConnection()
    agent.addTransceiver("video", direction="recvonly")
    agent.addTransceiver("audio", direction="recvonly")
    received: asyncio.Queue[object] = asyncio.Queue()

    @agent.on("track")
    def on_track(track: object) -> None:
        if getattr(track, "kind", "") == "video":
            received.put_nowait(track)

    # aiortc gathers every candidate inside setLocalDescription: the SDP is complete.
    await agent.setLocalDescription(await agent.createOffer())
    posted = console.post(
        f"/console/video/{session_id}/offer",
        json={"sdp": agent.localDescription.sdp},
        headers=agent_headers,
    )
    assert posted.status_code == 200

    # The customer: joins, fetches the offer, answers with the camera.
    joined = phone.post(f"{link}/join", json={}, headers=customer_headers).get_json()
    customer = aiortc.RTCPeerConnection()
    camera = Camera()
    await customer.setRemoteDescription(
        aiortc.RTCSessionDescription(sdp=joined["offer"], type="offer")
    )
    for transceiver in customer.getTransceivers():
        if transceiver.kind == "video":
            transceiver.sender.replaceTrack(camera)
            transceiver.direction = "sendonly"
    await customer.setLocalDescription(await customer.createAnswer())
    answered = phone.post(
        f"{link}/answer",
        json={"sdp": customer.localDescription.sdp, "version": joined["version"]},
        headers=customer_headers,
    )
    assert answered.status_code == 200

    # The agent polls for the answer, as its page does.
    answer = None
    for _ in range(50):
        answer = console.get(f"/console/video/{session_id}/state.json").get_json()["answer"]
        if answer:
            break
        await asyncio.sleep(0.1)
    assert answer
    await agent.setRemoteDescription(aiortc.RTCSessionDescription(sdp=answer, type="answer"))
    track = await asyncio.wait_for(received.get(), 15)
    started = time.monotonic()
    frames = []
    for _ in range(5):
        frames.append(await asyncio.wait_for(track.recv(), 15))  # type: ignore[attr-defined]
    first_frame_ms = int((time.monotonic() - started) * 1000)
    phone.post(f"{link}/event", json={"event": "connected"}, headers=customer_headers)
    stats = await agent.getStats()
    inbound = [s for s in stats.values() if getattr(s, "type", "") == "inbound-rtp"]
    video_in = next(s for s in inbound if s.kind == "video")
    transport = [s for s in stats.values() if getattr(s, "type", "") == "transport"]
    console.post(f"/console/video/{session_id}/end", json={}, headers=agent_headers)
    await customer.close()
    await agent.close()
    return {
        "frames": len(frames),
        "width": frames[0].width,  # type: ignore[attr-defined]
        "bytes": sum(int(t.bytesReceived) for t in transport),
        "packets": int(video_in.packetsReceived),
        "first_frame_ms": first_frame_ms,
    }


# aiortc leaves one internal coroutine un-awaited when its event loop closes; it is collected
# here (gc.collect below) rather than during whichever test runs next.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_aiortc_customer_sends_frames_to_the_agent_through_kefus_signalling(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    session_id, link = start_call(app, console, wechat, wechat_api)
    # Its own thread and event loop: the browser tests' Playwright may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(asyncio.run, call(app, console, session_id, link)).result(60)
    gc.collect()
    assert result["frames"] == 5 and result["width"] == 320
    assert result["bytes"] > 0 and result["packets"] > 0
    with app.app_context():
        found = db.session.get(VideoSession, session_id)
        assert found is not None and found.status == "ended" and found.connected_at
        actions = [e.action for e in audit.history("handoff", str(found.handoff_id))]
        assert "video.start" in actions and "video.end" in actions
