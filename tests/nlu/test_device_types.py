"""Device-type mismatch: a question about one device is not answered by another device's entry."""

from __future__ import annotations

import pytest

from kefu.nlu import KbDoc, KbIndex, Understanding
from kefu.nlu import index as index_module
from kefu.nlu.devices import (
    conflicts,
    device_concepts,
    entry_types,
    message_types,
    type_names,
    unknown_concepts,
)
from kefu.nlu.text import analyze
from kefu.nlu.understand import understand_rules as understand

ALL = frozenset({"all", "end_user", "installer"})

# Made-up entries: several devices share symptom words (报警/嘀嘀, 离线, 充电, 闪灯).
KB = [
    KbDoc(
        "cam_offline",
        "摄像头在App里显示离线怎么办？",
        ("监控设备不在线", "摄像头连不上了"),
        "all",
        ("在线状态",),
        "检查摄像头电源和路由器，重启摄像头后重新配网。",
    ),
    KbDoc(
        "cam_siren",
        "摄像头半夜发出警报声怎么关闭？",
        ("摄像头一直嘀嘀叫", "声光警戒怎么关"),
        "all",
        ("声光警戒",),
        "在App的摄像头设置里关闭声光警戒。",
    ),
    KbDoc(
        "lock_alarm",
        "智能锁一直嘀嘀报警怎么办？",
        ("门锁警报声停不下来", "防撬报警怎么解除"),
        "all",
        ("智能锁", "报警"),
        "检查锁体是否被撬，输入管理员密码解除报警。",
    ),
    KbDoc(
        "lock_battery",
        "智能锁没电了怎么开门？",
        ("门锁电量低", "指纹锁电池怎么换"),
        "all",
        ("智能锁", "电池"),
        "用应急供电口给门锁临时供电后开门，再更换电池。",
    ),
    KbDoc(
        "lock_passage",
        "智能锁怎么设置常开模式？",
        ("门锁一直不锁", "常开怎么取消"),
        "all",
        ("智能锁", "常开模式"),
        "在门锁设置里打开常开模式。",
    ),
    KbDoc(
        "bell_charge",
        "可视门铃怎么充电？",
        ("门铃电量低", "门铃要拆下来充电吗"),
        "all",
        ("门铃", "充电"),
        "把门铃从支架取下，用充电线充满约4小时。",
    ),
    KbDoc(
        "nvr_hdmi",
        "录像机接显示器没有画面？",
        ("录像机连电视黑屏", "HDMI接上无信号"),
        "installer",
        ("录像机",),
        "确认录像机的HDMI输出分辨率显示器支持。",
    ),
    KbDoc(
        "warranty",
        "哪些情况属于免费保修？",
        ("坏了能免费修吗", "保修期多久"),
        "all",
        ("保修",),
        "一年内非人为损坏免费保修。",
    ),
    KbDoc(
        "account_cancel",
        "怎么注销安视云账号？",
        ("不用了想删除账号", "账号注销在哪里"),
        "all",
        ("账号",),
        "在App的我的-账号安全里注销。",
    ),
    KbDoc(
        "rename",
        "设备名称怎么改？",
        ("给摄像头改名字", "修改通道名称", "设备太多怎么分组"),
        "all",
        ("设备名称",),
        "在App设备设置里修改名称。",
    ),
]


@pytest.fixture(scope="module")
def index() -> KbIndex:
    return KbIndex.build(KB)


@pytest.fixture
def no_penalty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "TYPE_PENALTY", False)


def answered(u: Understanding) -> str | None:
    return u.candidates[0].id if u.kind == "answer" else None


def offered(u: Understanding) -> set[str]:
    """Entries the user is shown: the answer, or the close-call choices."""
    return {c.id for c in u.candidates} if u.kind in {"answer", "clarify"} else set()


def test_data_file_uses_known_concepts() -> None:
    # synonyms.txt is edited independently; a renamed concept would switch a device off.
    assert unknown_concepts() == []
    assert {"摄像头", "录像机", "门铃", "智能锁"} <= device_concepts()


@pytest.mark.parametrize(
    ("row", "types"),
    [
        ("cam_offline", {"camera"}),
        ("cam_siren", {"camera"}),
        ("lock_alarm", {"lock"}),
        ("bell_charge", {"doorbell"}),
        ("nvr_hdmi", {"recorder"}),
        ("warranty", set()),  # names no device: generic
        ("account_cancel", {"app"}),  # a service entry: generic for every device
        ("rename", set()),  # one passing "摄像头" among four phrasings does not type it
    ],
)
def test_entry_types_come_from_the_entry_text(index: KbIndex, row: str, types: set[str]) -> None:
    pos = [d.id for d in KB].index(row)
    assert index.device_types(pos) == types


def test_features_type_an_entry_but_not_a_message() -> None:
    # 临时密码/指纹 are a lock's, so an entry about them is a lock entry...
    fp = analyze("指纹录入失败").concepts
    assert type_names(entry_types(fp, [fp], analyze("智能锁").concepts)) == {"lock"}
    # ...but a user who only says 指纹 has not named a device.
    assert message_types(fp) == 0


def test_camera_kinds_are_one_family() -> None:
    ptz = message_types(analyze("云台摄像头不转了").concepts)
    cam = entry_types(analyze("摄像头离线").concepts, [analyze("监控不在线").concepts])
    lock = entry_types(analyze("智能锁没电").concepts, [analyze("门锁电量低").concepts])
    assert not conflicts(ptz, cam)
    assert not conflicts(message_types(analyze("4G摄像头离线").concepts), cam)
    assert conflicts(ptz, lock)
    assert not conflicts(0, lock)  # a message naming no device is never penalised


@pytest.mark.parametrize(
    "text", ["门铃一直嘀嘀响", "门铃电量低一直嘀嘀报警", "门铃老是发出警报声停不下来"]
)
def test_doorbell_question_never_gets_a_lock_entry(index: KbIndex, text: str) -> None:
    u = understand(text, index, ALL)
    assert answered(u) not in {"lock_alarm", "lock_battery", "lock_passage"}
    assert not offered(u) & {"lock_alarm", "lock_battery", "lock_passage", "cam_siren"}


def test_camera_siren_is_not_the_lock_alarm(index: KbIndex) -> None:
    u = understand("摄像头一直嘀嘀报警", index, ALL)
    assert answered(u) == "cam_siren"


def test_recorder_question_not_answered_by_camera_offline(index: KbIndex) -> None:
    u = understand("录像机显示离线了", index, ALL)
    assert answered(u) != "cam_offline"
    assert "cam_offline" not in offered(u)


def test_penalty_is_what_keeps_the_other_device_out(index: KbIndex, no_penalty: None) -> None:
    # Without it, the other device's entry wins on the shared symptom words.
    assert answered(understand("录像机显示离线了", index, ALL)) == "cam_offline"


def test_lock_question_answered_by_a_lock_entry(index: KbIndex) -> None:
    assert answered(understand("智能锁一直嘀嘀叫", index, ALL)) == "lock_alarm"
    assert answered(understand("门锁没电了", index, ALL)) == "lock_battery"


def test_camera_kind_matches_camera_entry(index: KbIndex) -> None:
    assert answered(understand("云台摄像头显示离线", index, ALL)) == "cam_offline"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("门铃坏了能免费保修吗", "warranty"),
        ("智能锁的保修期多久", "warranty"),
        ("门锁App的账号怎么注销", "account_cancel"),
        ("录像机通道名称怎么改", "rename"),
    ],
)
def test_generic_entries_are_not_penalised(index: KbIndex, text: str, expected: str) -> None:
    assert answered(understand(text, index, ALL)) == expected


def test_other_device_wins_without_the_penalty(index: KbIndex, no_penalty: None) -> None:
    # Without the penalty the camera's siren entry wins on 闪灯/警戒 words.
    assert answered(understand("智能锁一直闪红蓝灯", index, ALL)) == "cam_siren"


def test_close_call_offers_the_lock_entries(index: KbIndex) -> None:
    u = understand("智能锁一直闪红蓝灯", index, ALL)
    assert u.kind == "clarify"
    assert "cam_siren" not in offered(u)
    assert offered(u) <= {"lock_alarm", "lock_battery", "lock_passage"}


def test_close_call_without_device_word_keeps_every_device() -> None:
    idx = KbIndex.build(
        [
            KbDoc("cam_reset", "摄像头怎么恢复出厂设置？", ("摄像头复位",), "all"),
            KbDoc("bell_reset", "门铃怎么恢复出厂设置？", ("门铃复位",), "all"),
        ]
    )
    u = understand("怎么恢复出厂设置", idx, ALL)
    assert u.kind == "clarify"
    assert offered(u) == {"cam_reset", "bell_reset"}


def test_device_word_alone_does_not_win_after_the_penalty(index: KbIndex) -> None:
    # The lock entry is out, and the doorbell entry shares only the word 门铃: no answer.
    assert answered(understand("门铃怎么设置常开", index, ALL)) is None
    # The camera's siren entry covers the rest of the message: the doorbell's charging entry,
    # which shares only 门铃, is no answer either.
    assert answered(understand("门铃一直闪红蓝灯", index, ALL)) is None
