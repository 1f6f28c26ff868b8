"""Video guidance without a browser: the link and who may use it, the signalling relay, TURN
credentials, snapshots and customer uploads kept staff-only, recording, and the audit trail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import re
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from kefu import audit, video
from kefu.extensions import db
from kefu.models import ChatMessage
from kefu.video import VideoMedia, VideoSession
from tests.conftest import FakeWeChat
from tests.wechat_api import FakeWeChatApi

from .conftest import SEND, Catalog, deliver, form_token, hand_off, new_client, sent_texts

LINK_RE = re.compile(r"https://kefu\.example\.com(/v/[A-Za-z0-9_-]+)")
WECHAT_UA = "Mozilla/5.0 (Linux; Android 13) MicroMessenger/8.0.47"
# A minimal SDP with what the relay checks for (a version line, media, DTLS fingerprint).
OFFER = (
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-256 AA\r\n"
)
ANSWER = OFFER.replace("o=- 1", "o=- 3")


def jpeg(color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(out, "JPEG")
    return out.getvalue()


def start_call(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, api: FakeWeChatApi
) -> tuple[int, str]:
    """A user hands off; the agent presses 视频指导; returns (session id, the link's path)."""
    waiting = hand_off(app, wechat, "o_video")
    page = f"/console/c/{waiting.handoff_id}"
    token = form_token(console, page)
    response = console.post(
        "/console/video", data={"handoff": waiting.handoff_id, "csrf_token": token}
    )
    assert response.status_code == 302 and "/console/video/" in response.headers["Location"]
    session_id = int(response.headers["Location"].rsplit("/", 1)[1])
    deliver(app)
    texts = sent_texts(api, "o_video")
    match = LINK_RE.search(texts[-1])
    assert match, texts
    return session_id, match.group(1)


def csrf_header(client: FlaskClient, url: str) -> dict[str, str]:
    return {"X-CSRFToken": form_token(client, url)}


def test_the_customer_gets_a_single_use_link_and_the_call_is_relayed(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    session_id, link = start_call(app, console, wechat, wechat_api)
    panel = console.get(f"/console/video/{session_id}").get_data(as_text=True)
    assert "已送达微信" in panel  # the link's delivery, as the outbox recorded it
    agent = csrf_header(console, f"/console/video/{session_id}")
    assert (
        console.post(
            f"/console/video/{session_id}/offer", json={"sdp": OFFER}, headers=agent
        ).status_code
        == 200
    )

    phone = new_client(app)
    page = phone.get(link)
    assert page.status_code == 200 and "加入视频" in page.get_data(as_text=True)
    customer = csrf_header(phone, link)
    joined = phone.post(f"{link}/join", json={}, headers=customer).get_json()
    assert joined["offer"] == OFFER
    assert phone.get(f"{link}/offer").get_json()["sdp"] == OFFER
    assert console.get(f"/console/video/{session_id}/state.json").get_json()["answer"] is None
    # The agent turns their camera on: a new offer replaces the one the phone is answering, and
    # an answer to the old one is refused (the page then answers the new one).
    offer2 = OFFER.replace("o=- 1", "o=- 2")
    console.post(f"/console/video/{session_id}/offer", json={"sdp": offer2}, headers=agent)
    stale = phone.post(
        f"{link}/answer", json={"sdp": ANSWER, "version": joined["version"]}, headers=customer
    )
    assert stale.status_code == 409 and stale.get_json()["error"] == "stale"
    current = phone.get(f"{link}/offer").get_json()
    assert current["sdp"] == offer2 and current["version"] != joined["version"]
    answered = phone.post(
        f"{link}/answer", json={"sdp": ANSWER, "version": current["version"]}, headers=customer
    )
    assert answered.status_code == 200
    state = console.get(f"/console/video/{session_id}/state.json").get_json()
    assert state["answer"] == ANSWER and state["status"] == "joined"

    # Anyone else with the link (forwarded, or a second phone) is refused: it is used up.
    other = new_client(app)
    assert other.get(link).status_code == 409
    assert "已在另一台设备上使用" in other.get(link).get_data(as_text=True)
    assert other.get(f"{link}/offer").status_code == 409
    # The same phone may reload its page.
    assert phone.get(link).status_code == 200

    assert (
        phone.post(f"{link}/event", json={"event": "connected"}, headers=customer).status_code
        == 200
    )
    assert (
        console.post(f"/console/video/{session_id}/end", json={}, headers=agent).get_json()[
            "status"
        ]
        == "ended"
    )
    with app.app_context():
        found = db.session.get(VideoSession, session_id)
        assert found is not None and found.handoff_id
        actions = [e.action for e in audit.history("handoff", str(found.handoff_id))]
        assert ["video.create", "video.join", "video.start", "video.end"] == [
            a for a in actions if a.startswith("video.") and a != "video.view"
        ]
        ended = [
            e for e in audit.history("handoff", str(found.handoff_id)) if e.action == "video.end"
        ][0]
        assert ended.after is not None
        assert ended.after["participants"] == ["staff:alice", "customer"]
        assert ended.after["duration_s"] >= 0 and ended.after["connected"] is True
        assert ended.actor == "staff:alice"
    # Over: the page says so, the signalling is gone.
    assert phone.get(link).status_code == 410
    assert phone.post(f"{link}/answer", json={"sdp": ANSWER}, headers=customer).status_code == 410


def test_the_link_expires_and_a_guessed_one_opens_nothing(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    session_id, link = start_call(app, console, wechat, wechat_api)
    phone = new_client(app)
    assert phone.get("/v/not-a-real-token").status_code == 404
    with app.app_context():
        found = db.session.get(VideoSession, session_id)
        assert found is not None
        assert found.expires_at - found.created_at == timedelta(minutes=10)
        found.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.session.commit()
    page = phone.get(link)
    assert page.status_code == 410 and "视频链接已过期" in page.get_data(as_text=True)
    english = phone.get(link + "?lang=en").get_data(as_text=True)
    assert "This video link has expired" in english


def test_inside_wechat_only_the_conversations_user_may_join(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    session_id, link = start_call(app, console, wechat, wechat_api)
    stranger = new_client(app)
    stranger.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    # First visit: the silent OAuth round trip to learn who is looking.
    sent = stranger.get(link)
    assert sent.status_code == 302 and "open.weixin.qq.com" in sent.headers["Location"]
    state = re.search(r"state=([^&#]+)", sent.headers["Location"])
    assert state
    wechat_api.oauth_openids["code-stranger"] = "o_someone_else"
    back = stranger.get(f"/auth/wechat?code=code-stranger&state={state.group(1)}")
    assert back.headers["Location"].endswith(link)
    refused = stranger.get(link)
    assert refused.status_code == 403 and "发给另一位微信用户" in refused.get_data(as_text=True)

    # Someone who does not let WeChat identify them (no code comes back) is not let in either.
    anonymous = new_client(app)
    anonymous.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    sent = anonymous.get(link)
    state = re.search(r"state=([^&#]+)", sent.headers["Location"])
    assert state
    anonymous.get(f"/auth/wechat?state={state.group(1)}")
    refused = anonymous.get(link)
    assert refused.status_code == 403 and "允许识别身份" in refused.get_data(as_text=True)

    owner = new_client(app)
    owner.environ_base["HTTP_USER_AGENT"] = WECHAT_UA
    sent = owner.get(link)
    state = re.search(r"state=([^&#]+)", sent.headers["Location"])
    assert state
    wechat_api.oauth_openids["code-owner"] = "o_video"
    owner.get(f"/auth/wechat?code=code-owner&state={state.group(1)}")
    assert owner.get(link).status_code == 200
    joined = owner.post(f"{link}/join", json={}, headers=csrf_header(owner, link))
    assert joined.status_code == 200


def test_a_closed_window_starts_no_call_and_a_refused_link_is_shown(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    waiting = hand_off(app, wechat, "o_video")
    page = f"/console/c/{waiting.handoff_id}"
    # WeChat refuses the link (the window closed on its side): the agent's panel says 45015.
    wechat_api.errors[SEND] = [45015]
    token = form_token(console, page)
    response = console.post(
        "/console/video", data={"handoff": waiting.handoff_id, "csrf_token": token}
    )
    deliver(app)
    panel_url = response.headers["Location"]
    state = console.get(panel_url + "/state.json").get_json()
    assert state["delivery"]["code"] == 45015 and "45015" in state["delivery"]["label"]
    assert "45015" in console.get(panel_url).get_data(as_text=True)
    # Now our own clock says the window is closed too: no session, and the agent is told why.
    with app.app_context():
        for line in db.session.scalars(select(ChatMessage).where(ChatMessage.openid == "o_video")):
            line.created_at = datetime.now(UTC) - timedelta(hours=49)
        db.session.commit()
        before = db.session.scalar(select(db.func.count()).select_from(VideoSession))
    token = form_token(console, page)
    again = console.post(
        "/console/video",
        data={"handoff": waiting.handoff_id, "csrf_token": token},
        follow_redirects=True,
    )
    assert "48小时窗口已关闭" in again.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(db.func.count()).select_from(VideoSession)) == before


def test_turn_credentials_follow_coturns_rest_api(app: Flask) -> None:
    app.config.update(
        VIDEO_STUN_URLS="stun:turn.example.com:3478",
        VIDEO_TURN_URLS="turn:turn.example.com:3478?transport=udp, turns:turn.example.com:5349",
        VIDEO_TURN_SECRET="s3cret",
        VIDEO_TURN_TTL=600,
    )
    now = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    with app.test_request_context():
        stun, turn = video.ice_servers("c42", now)
    assert stun == {"urls": ["stun:turn.example.com:3478"]}
    assert turn["urls"] == [
        "turn:turn.example.com:3478?transport=udp",
        "turns:turn.example.com:5349",
    ]
    expiry = int(now.timestamp()) + 600
    assert turn["username"] == f"{expiry}:c42"
    expected = base64.b64encode(
        hmac.new(b"s3cret", f"{expiry}:c42".encode(), hashlib.sha1).digest()
    ).decode()
    assert turn["credential"] == expected
    app.config["VIDEO_TURN_SECRET"] = ""  # TURN without a secret would only fail: left out
    with app.test_request_context():
        assert video.ice_servers("c42", now) == [stun]


def test_snapshots_and_customer_uploads_are_staff_only_and_in_the_conversation(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    session_id, link = start_call(app, console, wechat, wechat_api)
    agent = csrf_header(console, f"/console/video/{session_id}")
    shot = console.post(
        f"/console/video/{session_id}/snapshot",
        data={"image": (io.BytesIO(jpeg()), "snapshot.jpg")},
        headers=agent,
    )
    assert shot.status_code == 201
    media_url = shot.get_json()["url"]
    assert console.get(media_url).mimetype == "image/jpeg"
    bad = console.post(
        f"/console/video/{session_id}/snapshot",
        data={"image": (io.BytesIO(b"not an image"), "x.jpg")},
        headers=agent,
    )
    assert bad.status_code == 400 and "JPG" in bad.get_json()["message"]
    # Nobody outside the console reaches the file.
    assert new_client(app).get(media_url).status_code == 302

    phone = new_client(app)
    phone.get(link)
    customer = csrf_header(phone, link)
    # The camera could not be used: the page offers a photo and a short clip instead.
    photo = phone.post(
        f"{link}/upload",
        data={"file": (io.BytesIO(jpeg("blue")), "p.jpg", "image/jpeg")},
        headers=customer,
    )
    assert photo.status_code == 201 and "客服" in photo.get_json()["message"]
    clip = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200
    sent = phone.post(
        f"{link}/upload", data={"file": (io.BytesIO(clip), "c.mp4", "video/mp4")}, headers=customer
    )
    assert sent.status_code == 201
    junk = phone.post(
        f"{link}/upload",
        data={"file": (io.BytesIO(b"hello"), "c.mp4", "video/mp4")},
        headers=customer,
    )
    assert junk.status_code == 400 and "MP4" in junk.get_json()["message"]
    # The link was claimed by this phone's upload: another browser cannot use it now.
    assert new_client(app).get(link).status_code == 409

    with app.app_context():
        found = db.session.get(VideoSession, session_id)
        assert found is not None
        handoff_id = found.handoff_id
        kinds = sorted(m.kind for m in found.media)
        clip_id = next(m.id for m in found.media if m.kind == "video")
    assert kinds == ["photo", "snapshot", "video"]
    conversation = console.get(f"/console/c/{handoff_id}").get_data(as_text=True)
    assert "用户上传了一张照片" in conversation and "用户上传了一段视频" in conversation
    assert media_url in conversation  # the snapshot's thumbnail on the video card
    assert console.get(f"/console/video/media/{clip_id}").get_data() == clip
    # The web upload is not a WeChat message: the 48-hour window is unchanged by it.
    with app.app_context():
        lines = db.session.scalars(select(ChatMessage).where(ChatMessage.direction == "web")).all()
        assert len(lines) == 2


def test_a_call_from_a_ticket_is_audited_on_the_ticket(
    app: Flask,
    console: FlaskClient,
    wechat: FakeWeChat,
    wechat_api: FakeWeChatApi,
    catalog: Catalog,
) -> None:
    from .test_tickets import open_from_conversation

    number = open_from_conversation(app, wechat, console)
    token = form_token(console, f"/console/t/{number}")
    response = console.post("/console/video", data={"ticket": number, "csrf_token": token})
    assert response.status_code == 302
    session_id = int(response.headers["Location"].rsplit("/", 1)[1])
    agent = csrf_header(console, f"/console/video/{session_id}")
    shot = console.post(
        f"/console/video/{session_id}/snapshot",
        data={"image": (io.BytesIO(jpeg()), "snapshot.jpg")},
        headers=agent,
    )
    assert shot.status_code == 201
    page = console.get(f"/console/t/{number}").get_data(as_text=True)
    assert shot.get_json()["url"] in page
    with app.app_context():
        found = db.session.get(VideoSession, session_id)
        assert found is not None and found.handoff_id  # the customer's conversation, too
        actions = [e.action for e in audit.history("ticket", number)]
        assert "video.create" in actions and "video.snapshot" in actions


def test_recording_needs_the_customers_consent(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    session_id, link = start_call(app, console, wechat, wechat_api)
    agent = csrf_header(console, f"/console/video/{session_id}")
    refused = console.post(
        f"/console/video/{session_id}/recording?seq=0", data=b"\x1a\x45\xdf\xa3", headers=agent
    )
    assert refused.status_code == 409  # recording is off by default

    app.config["VIDEO_RECORDING"] = True
    session_id, link = start_call(app, console, wechat, wechat_api)
    agent = csrf_header(console, f"/console/video/{session_id}")
    phone = new_client(app)
    page = phone.get(link).get_data(as_text=True)
    assert "本次通话会录像" in page and "我同意录像" in page
    customer = csrf_header(phone, link)
    no = phone.post(f"{link}/join", json={}, headers=customer)
    assert no.status_code == 400 and "同意" in no.get_json()["message"]
    assert phone.post(f"{link}/join", json={"consent": True}, headers=customer).status_code == 200
    phone.post(f"{link}/event", json={"event": "connected"}, headers=customer)
    for seq, chunk in enumerate([b"\x1a\x45\xdf\xa3first", b"second", b"third"]):
        up = console.post(
            f"/console/video/{session_id}/recording?seq={seq}", data=chunk, headers=agent
        )
        assert up.status_code == 201
    again = console.post(
        f"/console/video/{session_id}/recording?seq=1", data=b"second", headers=agent
    )
    assert again.status_code == 201  # a retried chunk is kept once
    whole = console.get(f"/console/video/{session_id}/recording.webm")
    assert whole.get_data() == b"\x1a\x45\xdf\xa3firstsecondthird"
    assert new_client(app).get(f"/console/video/{session_id}/recording.webm").status_code == 302
    with app.app_context():
        rows = db.session.scalars(select(VideoMedia).where(VideoMedia.kind == "recording")).all()
        assert len(rows) == 3


def test_without_redis_the_database_carries_the_signalling(
    make_app: object, app: Flask, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    other = make_app(
        REDIS_URL="", WECHAT_API_BASE_URL=app.config["WECHAT_API_BASE_URL"], JOBS_EAGER=True
    )  # type: ignore[operator]
    from .conftest import make_staff, sign_in

    make_staff(other, "bob")
    console = new_client(other)
    sign_in(console, "bob")
    session_id, link = start_call(other, console, FakeWeChat(other.test_client()), wechat_api)
    agent = csrf_header(console, f"/console/video/{session_id}")
    console.post(f"/console/video/{session_id}/offer", json={"sdp": OFFER}, headers=agent)
    phone = new_client(other)
    phone.get(link)
    customer = csrf_header(phone, link)
    joined = phone.post(f"{link}/join", json={}, headers=customer).get_json()
    assert joined["offer"] == OFFER
    phone.post(
        f"{link}/answer", json={"sdp": ANSWER, "version": joined["version"]}, headers=customer
    )
    with other.app_context():
        found = db.session.get(VideoSession, session_id)
        assert found is not None and found.answer_sdp == ANSWER
    assert console.get(f"/console/video/{session_id}/state.json").get_json()["answer"] == ANSWER
    bad = phone.post(f"{link}/answer", json={"sdp": "hello"}, headers=customer)
    assert bad.status_code == 400 and bad.get_json()["error"] == "sdp"


def test_unfollowing_ends_the_call_and_drops_the_openid(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, wechat_api: FakeWeChatApi
) -> None:
    session_id, link = start_call(app, console, wechat, wechat_api)
    wechat.event("o_video", "unsubscribe")
    with app.app_context():
        found = db.session.get(VideoSession, session_id)
        assert found is not None and found.openid is None and found.status == "ended"
    assert new_client(app).get(link).status_code == 410
