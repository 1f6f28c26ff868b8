"""Knowledge base editing, unanswered questions, search, devices, installers, labels, reports."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from kefu import kb, tickets, unanswered
from kefu.catalog.models import Installer
from kefu.csat import CsatRating
from kefu.extensions import db
from kefu.models import KbEntry, UnansweredQuestion
from tests.conftest import FakeWeChat

from .conftest import Catalog, form_token, hand_off


def _entry(
    form: dict[str, str], console: FlaskClient, url: str = "/console/kb/new"
) -> tuple[int, str]:
    response = console.post(
        url, data={"csrf_token": form_token(console, "/console/kb/new"), **form}
    )
    return response.status_code, response.get_data(as_text=True)


def test_add_and_edit_entries_with_the_imports_validation(app: Flask, console: FlaskClient) -> None:
    with app.app_context():
        before = kb.current_revision()
    status, html = _entry(
        {"id": "bad id!", "question": "", "answer": "x", "audience": "everyone"}, console
    )
    assert status == 400
    assert "id must be an ASCII slug" in html and "question is empty" in html
    assert "invalid audience" in html
    status, _ = _entry(
        {
            "id": "door_chime",
            "question": "门铃不响怎么办？",
            "alternates": "门铃没声音\n按门铃没反应",
            "answer": "请检查电池并重新配对。",
            "audience": "all",
            "tags": "门铃, 声音",
            "products": "doorbell",
        },
        console,
    )
    assert status == 302
    with app.app_context():
        entry = db.session.get(KbEntry, "door_chime")
        assert entry.alternates == ["门铃没声音", "按门铃没反应"] and entry.tags == ["门铃", "声音"]
        # Every worker sees a new revision and rebuilds its index on its next message.
        assert kb.current_revision() != before
        assert "door_chime" in kb.snapshot().entries
    dup, html = _entry({"id": "door_chime", "question": "q", "answer": "a"}, console)
    assert dup == 400 and "已经存在" in html
    edit = console.post(
        "/console/kb/door_chime",
        data={
            "csrf_token": form_token(console, "/console/kb/door_chime"),
            "question": "门铃不响怎么办？",
            "alternates": "门铃没声音",
            "answer": "请更换电池。",
            "audience": "end_user",
            "tags": "",
            "products": "",
        },
    )
    assert edit.status_code == 302
    with app.app_context():
        assert db.session.get(KbEntry, "door_chime").answer == "请更换电池。"
        assert kb.snapshot().entries["door_chime"].answer == "请更换电池。"
    listing = console.get("/console/kb?q=门铃").get_data(as_text=True)
    assert "门铃不响怎么办？" in listing
    assert console.get("/console/kb/nope").status_code == 404


def test_unanswered_questions_group_by_similarity_and_become_alternates(
    app: Flask, console: FlaskClient
) -> None:
    now = datetime.now(UTC)
    with app.app_context():
        db.session.add(
            KbEntry(
                id="wifi_setup",
                question="摄像头怎么连 Wi-Fi？",
                alternates=[],
                answer="长按复位键 5 秒后用 App 配网。",
                audience="all",
                tags=[],
            )
        )
        for text in [
            "摄像头连不上wifi",
            "摄像头连不上WiFi",
            "摄像头连不上 wifi 了",
            "发票怎么开",
            "发票怎么开",
        ]:
            db.session.add(
                UnansweredQuestion(
                    text=text,
                    best_guess="wifi_setup" if "wifi" in text.lower() else None,
                    created_at=now - timedelta(hours=1),
                )
            )
        db.session.commit()
        groups = unanswered.groups(now)
        assert [g.count for g in groups] == [3, 2]
        assert groups[0].best_guess == "wifi_setup" and groups[1].text == "发票怎么开"
    page = console.get("/console/unanswered").get_data(as_text=True)
    assert "× 3" in page and "发票怎么开" in page
    token = form_token(console, "/console/unanswered")
    response = console.post(
        "/console/unanswered/alternate",
        data={
            "csrf_token": token,
            "text": "摄像头连不上wifi",
            "entry_id": "wifi_setup",
            "from_text": ["摄像头连不上wifi", "摄像头连不上WiFi", "摄像头连不上 wifi 了"],
        },
    )
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(KbEntry, "wifi_setup").alternates == ["摄像头连不上wifi"]
        assert [g.text for g in unanswered.groups(now)] == ["发票怎么开"]
        handled = db.session.scalars(
            select(UnansweredQuestion).where(UnansweredQuestion.handled_at.is_not(None))
        ).all()
        assert len(handled) == 3 and {q.kb_entry_id for q in handled} == {"wifi_setup"}
    new = console.get("/console/kb/new?question=发票怎么开&t=发票怎么开").get_data(as_text=True)
    assert 'value="发票怎么开"' in new
    missing = console.post(
        "/console/unanswered/alternate",
        data={"csrf_token": token, "text": "x", "entry_id": "nope"},
        follow_redirects=True,
    )
    assert "没有这个条目 id" in missing.get_data(as_text=True)


def test_search_by_phone_serial_ticket_and_openid(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, catalog: Catalog
) -> None:
    waiting = hand_off(app, wechat, "o_search")
    with app.app_context():
        ticket = tickets.open_ticket(
            actor="customer",
            values={},
            channel="chat",
            openid="o_search",
            serial="AS2024C3H000001",
            model_code="AS-C3H",
            fault="x",
            phone="13917384526",
            device_id=catalog.in_warranty.id,
        )
        number = ticket.number
        db.session.commit()
    by_phone = console.get("/console/search?q=139-1738-4526").get_data(as_text=True)
    assert number in by_phone and "AS2024C3H000001" in by_phone
    assert f"#{waiting.handoff_id}" in by_phone  # that customer's conversations
    assert number in console.get(f"/console/search?q={number.lower()}").get_data(as_text=True)
    assert number in console.get("/console/search?q=as2024c3h000001").get_data(as_text=True)
    assert f"#{waiting.handoff_id}" in console.get("/console/search?q=o_search").get_data(
        as_text=True
    )


def test_devices_installers_and_labels(app: Flask, console: FlaskClient, catalog: Catalog) -> None:
    page = console.get("/console/devices/AS2024C3H000001").get_data(as_text=True)
    assert "在保修期内" in page and "/d/" in page
    assert console.get("/console/devices/NOPE123456").status_code == 404
    assert (
        console.get("/console/devices?serial=as2024c3h000001")
        .headers["Location"]
        .endswith("/console/devices/AS2024C3H000001")
    )
    with app.app_context():
        pending = Installer(phone="13800000009", name="李师傅", company="安装队", status="pending")
        pending.set_password("x" * 10)
        db.session.add(pending)
        db.session.commit()
        installer_id = pending.id
    listing = console.get("/console/devices").get_data(as_text=True)
    assert "李师傅" in listing and "138****0009" in listing and "13800000009" not in listing
    token = form_token(console, "/console/devices")
    console.post(f"/console/installers/{installer_id}/approve", data={"csrf_token": token})
    with app.app_context():
        assert db.session.get(Installer, installer_id).status == "approved"
    pdf = console.post(
        "/console/labels", data={"csrf_token": token, "serials": "AS2024C3H000001\n"}
    )
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    unknown = console.post(
        "/console/labels", data={"csrf_token": token, "serials": "ZZZ999999"}, follow_redirects=True
    )
    assert "ZZZ999999" in unknown.get_data(as_text=True)


def test_reports_page_and_csv(
    app: Flask, console: FlaskClient, wechat: FakeWeChat, catalog: Catalog
) -> None:
    hand_off(app, wechat, "o_rep1")
    wechat.event("o_rep2", "CLICK", key="OTHER")  # a conversation the bot kept
    with app.app_context():
        ticket = tickets.open_ticket(
            actor="customer",
            values={"fault_category": {"value": "picture", "source": "bot"}},
            channel="chat",
            openid=None,
            serial="AS2024C3H000001",
            model_code="AS-C3H",
            fault="画面发黑",
        )
        db.session.add(
            CsatRating(ticket_id=ticket.id, openid=None, score=4, asked_at=datetime.now(UTC))
        )
        db.session.add(UnansweredQuestion(text="发票怎么开", created_at=datetime.now(UTC)))
        db.session.commit()
    page = console.get("/console/reports").get_data(as_text=True)
    assert "<svg" in page and "菜单转人工" in page and "4.0 / 5" in page
    assert "AS-C3H" in page and "picture" in page and "发票怎么开" in page
    csv_text = console.get("/console/reports.csv?days=7").data.decode("utf-8-sig")
    assert "handoffs_by_reason,menu,1" in csv_text
    assert "containment,sessions,2" in csv_text and "containment,contained,1" in csv_text
    assert "tickets_by_model_fault,AS-C3H,picture,1" in csv_text
    assert "csat,4,1" in csv_text and "top_unanswered,发票怎么开,1" in csv_text


def test_containment_does_not_count_a_return_on_the_same_topic_within_a_day(app: Flask) -> None:
    from kefu import reports
    from kefu.models import ChatMessage
    from kefu.timeutil import local_zone

    now = datetime.now(UTC)
    with app.app_context():
        zone = local_zone()
    # 10:00 local three days ago: +20 h is the next local day, whatever the time now.
    local = (now - timedelta(days=3)).astimezone(zone)
    day1 = local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)

    def said(openid: str, at: datetime, text: str) -> None:
        db.session.add(ChatMessage(openid=openid, direction="in", text=text, created_at=at))

    with app.app_context():
        said("o_back", day1, "摄像头连不上wifi")  # back the next morning about the same thing
        said("o_back", day1 + timedelta(hours=20), "摄像头还是连不上wifi")
        said("o_other", day1, "摄像头连不上wifi")  # next day, another topic: both contained
        said("o_other", day1 + timedelta(hours=20), "门锁电池能用多久")
        said("o_late", day1, "摄像头连不上wifi")  # the same topic, but two days later
        said("o_late", day1 + timedelta(hours=50), "摄像头连不上wifi")
        db.session.commit()
        report = reports.build(now, days=7)
    # Sessions: o_back 2, o_other 2, o_late 2; only o_back's first is not contained.
    assert (report.sessions, report.contained) == (6, 5)


def test_settled_days_are_counted_once_and_outlive_the_transcript(app: Flask) -> None:
    from sqlalchemy import delete

    from kefu import reports
    from kefu.models import ChatMessage
    from kefu.timeutil import local_zone

    now = datetime.now(UTC)
    with app.app_context():
        zone = local_zone()
    local = (now - timedelta(days=5)).astimezone(zone)
    day1 = local.replace(hour=10, minute=0, second=0, microsecond=0).astimezone(UTC)
    with app.app_context():
        for openid, at, text in (
            ("o_a", day1, "摄像头连不上wifi"),
            ("o_a", day1 + timedelta(hours=20), "摄像头还是连不上wifi"),  # back: not contained
            ("o_b", day1, "门锁电池能用多久"),
        ):
            db.session.add(ChatMessage(openid=openid, direction="in", text=text, created_at=at))
        db.session.commit()
        first = reports.build(now, days=7)
        db.session.commit()
        assert (first.sessions, first.contained) == (3, 2)
        stored = {r.day: r for r in db.session.scalars(select(reports.ReportDay))}
        assert stored[local.date()].sessions == 2 and stored[local.date()].contained == 1
        assert stored[local.date()].messages_in == 2
        # The transcript is pruned after its retention: the settled figures stay.
        db.session.execute(delete(ChatMessage))
        db.session.commit()
        again = reports.build(now, days=7)
        assert (again.sessions, again.contained) == (3, 2)
        assert (local.strftime("%m-%d"), 2, 0) in again.messages_by_day
        # The sweep fills missing settled days a few at a time, newest first.
        db.session.execute(delete(reports.ReportDay))
        assert reports.roll_up(now, batch=3) == 3
        assert reports.roll_up(now, keep_days=3, batch=3) == 0
