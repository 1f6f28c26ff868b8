"""Photos a user sends to an agent: fetched off the reply path, cleaned, shown to staff only."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from PIL import Image
from sqlalchemy import select

from kefu import chat_photos
from kefu.extensions import db
from tests.conftest import FakeWeChat
from tests.wechat_api import FakeWeChatApi

from .conftest import deliver, hand_off, new_client


@pytest.fixture
def photo_root(app: Flask, tmp_path: Path) -> Path:
    """Chat photos kept in a folder of this test."""
    folder = tmp_path / "chat-photos"
    app.config["CHAT_PHOTO_ROOT"] = str(folder)
    return folder


def camera_photo() -> bytes:
    """A phone photo carrying EXIF (camera make and a GPS block)."""
    image = Image.new("RGB", (1200, 900), (30, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (30.0, 15.0, 0.0)}  # GPSInfo: where the user lives
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def send_photo(wechat: FakeWeChat, openid: str, media_id: str) -> None:
    response = wechat.send(openid, "image", PicUrl="https://example.com/p.jpg", MediaId=media_id)
    assert response.get_data(as_text=True) == "success"  # the bot stays quiet for the agent


def test_a_photo_sent_to_an_agent_shows_in_the_transcript_for_staff_only(
    app: Flask,
    wechat: FakeWeChat,
    console: FlaskClient,
    wechat_api: FakeWeChatApi,
    photo_root: Path,
) -> None:
    waiting = hand_off(app, wechat)
    original = camera_photo()
    wechat_api.media["media-photo-1"] = original
    send_photo(wechat, waiting.openid, "media-photo-1")
    deliver(app)
    lines = console.get(f"/console/c/{waiting.handoff_id}/poll.json").get_json()["lines"]
    line = lines[-1]
    assert line["text"] == "[图片]" and line["from"] == "user"
    assert line["photo"]["status"] == "stored" and line["photo"]["thumb_url"]
    page = console.get(f"/console/c/{waiting.handoff_id}").get_data(as_text=True)
    assert (
        f'src="{line["photo"]["thumb_url"]}"' in page and f'href="{line["photo"]["url"]}"' in page
    )

    full = console.get(line["photo"]["url"])
    assert full.status_code == 200 and full.mimetype == "image/jpeg"
    assert full.headers["Cache-Control"] == "private, no-store"
    with Image.open(io.BytesIO(full.data)) as shown:
        assert shown.size == (1200, 900)
        assert not shown.getexif()  # no camera, no GPS position
    thumb = console.get(line["photo"]["thumb_url"])
    with Image.open(io.BytesIO(thumb.data)) as small:
        assert max(small.size) <= chat_photos.THUMB_SIDE
    # Kept by content hash outside the web root; nobody without a console session sees it.
    with app.app_context():
        photo = db.session.scalar(select(chat_photos.ChatPhoto))
        assert photo is not None and photo.sha256
        assert chat_photos.path_for(photo.sha256).is_relative_to(photo_root)
        assert not chat_photos.path_for(photo.sha256).is_relative_to(
            Path(app.config["MEDIA_ROOT"]).resolve()
        )
    stranger = new_client(app)
    assert stranger.get(line["photo"]["url"]).status_code == 302  # to the login page
    assert stranger.get(f"/media/{photo.sha256[:2]}/{photo.sha256}.jpg").status_code == 404
    # The photo was fetched once, through WeChat's temporary-media API.
    fetches = [b for p, b in wechat_api.calls if p == "/cgi-bin/media/get"]
    assert [f["args"]["media_id"] for f in fetches] == ["media-photo-1"]


def test_a_photo_wechat_no_longer_has_or_that_is_not_an_image_is_explained(
    app: Flask,
    wechat: FakeWeChat,
    console: FlaskClient,
    wechat_api: FakeWeChatApi,
    photo_root: Path,
) -> None:
    waiting = hand_off(app, wechat)
    wechat_api.media["media-bad"] = b"<html>not a picture</html>"
    send_photo(wechat, waiting.openid, "media-bad")
    send_photo(wechat, waiting.openid, "media-expired")  # the fake answers 40007
    deliver(app)
    lines = console.get(f"/console/c/{waiting.handoff_id}/poll.json").get_json()["lines"]
    photos = [line["photo"] for line in lines if line["photo"]]
    assert [p["status"] for p in photos] == ["failed", "failed"]
    assert all(p["url"] is None and "无法获取" in p["label"] for p in photos)
    with app.app_context():
        errors = db.session.scalars(
            select(chat_photos.ChatPhoto.error).order_by(chat_photos.ChatPhoto.id)
        ).all()
    assert errors[0] == "not_image" and "40007" in errors[1]
    assert console.get("/console/photo/999999").status_code == 404


def test_a_photo_is_retried_when_wechat_is_busy_and_removed_when_the_user_unfollows(
    app: Flask,
    wechat: FakeWeChat,
    console: FlaskClient,
    wechat_api: FakeWeChatApi,
    photo_root: Path,
) -> None:
    waiting = hand_off(app, wechat)
    wechat_api.media["media-2"] = camera_photo()
    wechat_api.errors["/cgi-bin/media/get"] = [-1]  # system busy once
    send_photo(wechat, waiting.openid, "media-2")
    deliver(app)
    with app.app_context():
        photo = db.session.scalar(select(chat_photos.ChatPhoto))
        assert photo.status == "pending" and photo.attempts == 1
        photo.created_at = photo.created_at - chat_photos.RETRY_AFTER
        db.session.commit()
        # The sweep queues the lost retry again; this time WeChat answers.
        from datetime import UTC, datetime

        from kefu import handoffs

        assert handoffs.sweep(datetime.now(UTC))["photos_requeued"] == 1
        db.session.commit()
    deliver(app)
    with app.app_context():
        photo = db.session.scalar(select(chat_photos.ChatPhoto))
        assert photo.status == "stored"
        files = [chat_photos.path_for(photo.sha256), chat_photos.path_for(photo.sha256, True)]
    assert all(f.is_file() for f in files)
    wechat.event(waiting.openid, "unsubscribe")
    with app.app_context():
        assert db.session.scalar(select(chat_photos.ChatPhoto.id)) is None
    assert not any(f.exists() for f in files)


def test_the_api_gives_integrations_the_photo_with_their_token(
    app: Flask,
    wechat: FakeWeChat,
    console: FlaskClient,
    runner: FlaskCliRunner,
    wechat_api: FakeWeChatApi,
    photo_root: Path,
) -> None:
    from tests.console.test_api import token_for

    waiting = hand_off(app, wechat)
    wechat_api.media["media-api"] = camera_photo()
    send_photo(wechat, waiting.openid, "media-api")
    deliver(app)
    api = new_client(app)
    headers = token_for(runner)
    body = api.get(f"/api/v1/conversations/{waiting.handoff_id}", headers=headers).get_json()
    photo = body["messages"][-1]["photo"]
    assert photo["status"] == "stored" and photo["url"].startswith("/api/v1/photos/")
    got = api.get(photo["url"], headers=headers)
    assert got.status_code == 200 and got.mimetype == "image/jpeg"
    assert api.get(photo["url"]).status_code == 401
