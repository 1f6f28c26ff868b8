"""Behaviour of the understanding layer as a user of the bot would notice it."""

from __future__ import annotations

import pytest

from kefu.nlu import HybridIndex, KbDoc, Understanding, detect_handoff, normalize, understand

END_USER = frozenset({"all", "end_user"})
INSTALLER = frozenset({"all", "installer"})

KB = [
    KbDoc(
        "offline",
        "设备在App里显示离线怎么办？",
        ("摄像头状态是灰色的", "设备不在线"),
        "all",
        ("在线状态",),
    ),
    KbDoc(
        "wifi_setup",
        "摄像头配网失败怎么办？",
        ("WiFi密码输完配网超时", "声波配网没反应"),
        "end_user",
        ("配网",),
    ),
    KbDoc("sd_card", "摄像头支持多大的存储卡？", ("TF卡买多大", "128G能录几天"), "end_user"),
    KbDoc(
        "nvr_add",
        "怎么往录像机里添加网络摄像头？",
        ("NVR加摄像头", "一键添加搜不到"),
        "installer",
        ("录像机",),
    ),
    KbDoc(
        "doorbell_battery",
        "可视门铃的电池怎么充电？",
        ("门铃电量低", "门铃要拆下来充电吗"),
        "end_user",
    ),
    KbDoc(
        "lock_battery", "智能锁的电池怎么充电？", ("门锁电量低", "门锁没电了怎么开门"), "end_user"
    ),
    KbDoc(
        "lock_users",
        "怎么删除智能锁里某个人的指纹或密码？",
        ("删除开门密码", "清空门锁用户"),
        "end_user",
    ),
    KbDoc("err_400018", "打开App报错400018怎么处理？", ("App提示400018",), "end_user"),
    KbDoc("nvr_hdmi", "录像机接显示器没有画面？", ("HDMI连接后黑屏",), "all"),
]


@pytest.fixture(scope="module")
def index() -> HybridIndex:
    return HybridIndex.build(KB)


def answered(u: Understanding) -> str | None:
    return u.candidates[0].id if u.kind == "answer" else None


def test_normalize_folds_width_case_and_space() -> None:
    assert normalize("  ＡＰＰ　报错！ ") == "app 报错!"
    assert normalize("Ｗｉ－Ｆｉ\u200b连不上") == "wi-fi连不上"


def test_index_length(index: HybridIndex) -> None:
    assert len(index) == len(KB)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wifi连不上，配置网络老是超时", "wifi_setup"),
        ("内存卡最大能插多大的", "sd_card"),  # 内存卡=存储卡
        ("硬盘录像机接电视黑屏", "nvr_hdmi"),
    ],
)
def test_synonyms_find_the_entry(index: HybridIndex, text: str, expected: str) -> None:
    assert answered(understand(text, index)) == expected


def test_digits_only_error_code(index: HybridIndex) -> None:
    assert answered(understand("400018", index)) == "err_400018"
    assert answered(understand("app报错４０００１８", index)) == "err_400018"


def test_installer_entry_hidden_from_end_users(index: HybridIndex) -> None:
    u = understand("NVR怎么添加摄像头", index, END_USER)
    assert all(c.id != "nvr_add" for c in u.candidates)
    assert answered(understand("NVR怎么添加摄像头", index, INSTALLER)) == "nvr_add"


@pytest.mark.parametrize("text", ["在吗", "你好", "谢谢！", "🙂", "   ", "？？", "ok"])
def test_small_talk_and_empty_get_no_answer(index: HybridIndex, text: str) -> None:
    u = understand(text, index)
    assert u.kind == "none"
    assert u.reason in {"empty", "smalltalk"}


@pytest.mark.parametrize(
    "text", ["你们公司还招人吗", "今天天气怎么样", "qwertyuiop", "小米摄像头好用吗"]
)
def test_out_of_scope_gets_no_answer(index: HybridIndex, text: str) -> None:
    assert understand(text, index).kind in {"none", "clarify"}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("转人工", "requested"),
        ("我要找真人客服", "requested"),
        ("能打电话联系我吗", "requested"),
        ("你们这什么垃圾产品，摄像头天天掉线!!!", "angry"),  # angry beats a KB-covered problem
        ("我要投诉", "angry"),
        ("退钱！！！", "angry"),
        ("怎么查看邻居家的摄像头", "security"),
        ("帮我解绑别人绑定的设备", "security"),
        ("怎么破解门锁密码", "security"),
        ("对面店的摄像头录像我能调吗", "security"),  # third party and object a few chars apart
        ("原主人的账号还绑着，你们帮我强制解绑", "security"),
        ("不输密码能开锁吗", "security"),
        ("让工程师联系我", "requested"),
    ],
)
def test_handoff_triggers(index: HybridIndex, text: str, reason: str) -> None:
    assert detect_handoff(text) == reason
    u = understand(text, index)
    assert u.kind == "handoff"
    assert u.reason == reason


@pytest.mark.parametrize(
    "text",
    [
        "钟点工不来了，想把她的开门密码去掉",
        "前任租客的指纹怎么删掉",
        "账号绑定的手机要换",
        "摄像头一直掉线怎么办",
        "门锁密码忘了怎么办",
        "怎么把摄像头分享给家人",
        "摄像头拍到隔壁窗户了，能把那块遮住吗",  # neighbour, but a privacy-mask question
        "门锁外面板被撬了一直叫",  # a tamper report, not a request to pry it open
        "租客搬走了，要清除他的门卡和指纹",
    ],
)
def test_ordinary_questions_are_not_handed_off(text: str) -> None:
    assert detect_handoff(text) is None


def test_own_lock_user_removal_is_answered(index: HybridIndex) -> None:
    assert answered(understand("钟点工不来了，想把她的开门密码去掉", index)) == "lock_users"


def test_close_call_asks_to_clarify(index: HybridIndex) -> None:
    u = understand("电池怎么充电", index)
    assert u.kind == "clarify"
    assert 2 <= len(u.candidates) <= 3
    assert {c.id for c in u.candidates[:2]} == {"doorbell_battery", "lock_battery"}


def test_scores_are_calibrated_and_limited(index: HybridIndex) -> None:
    u = understand("门铃电量低怎么办", index, END_USER)
    assert u.kind == "answer"
    assert u.candidates[0].id == "doorbell_battery"
    assert all(0.0 <= c.score <= 1.0 for c in u.candidates)


def test_equal_matches_clarify_with_both() -> None:
    idx = HybridIndex.build(
        [
            KbDoc("cam_reset", "摄像头怎么恢复出厂设置？", ("摄像头复位",), "all"),
            KbDoc("bell_reset", "门铃怎么恢复出厂设置？", ("门铃复位",), "all"),
        ]
    )
    u = understand("怎么恢复出厂设置", idx)
    assert u.kind == "clarify"
    assert {c.id for c in u.candidates} == {"cam_reset", "bell_reset"}


def test_security_request_about_someone_elses_camera() -> None:
    assert detect_handoff("怎么解绑别人绑定在我家门口的摄像头，我想看他家的录像") == "security"


def test_polite_refund_question_is_not_angry() -> None:
    assert detect_handoff("云存储不想用了，能退钱吗") is None
    # Carrying out a refund is for staff: handed off either way.
    assert detect_handoff("给我退钱") in {"angry", "security"}


def test_answer_text_is_searched() -> None:
    idx = HybridIndex.build(
        [
            KbDoc(
                "offline",
                "设备显示离线怎么办？",
                ("摄像头不在线",),
                "all",
                answer="红灯闪烁表示未联网，请重启路由器。",
            ),
            KbDoc("flip", "画面倒了怎么调？", ("画面翻转",), "all", answer="打开画面翻转。"),
        ]
    )
    assert answered(understand("摄像头一直闪红灯", idx)) == "offline"


def test_latin_pieces_are_not_synonyms(index: HybridIndex) -> None:
    assert understand("asdfgh", index).kind == "none"


def test_incidental_word_match_is_not_confident() -> None:
    # The only entry sharing a word (充电) is about something else the message never names.
    idx = HybridIndex.build(
        [
            KbDoc("bell_charge", "可视门铃怎么充电？", ("门铃电量低", "门铃充电灯不亮"), "all"),
            KbDoc("nvr_hdmi", "录像机接显示器没有画面？", ("HDMI连接后黑屏",), "all"),
        ]
    )
    u = understand("电动车充电器充电要多久", idx)
    assert u.kind != "answer"


def test_not_quite_sure_offers_a_list_led_by_the_best_entry(index: HybridIndex) -> None:
    # A decision that is fairly sure of the dense favourite, but not sure enough to answer:
    # the user gets a numbered list that starts with it, not a "don't know".
    from kefu.nlu.decision import FEATURES, Calibrator

    weights = tuple(5.0 if name == "dense_first" else 0.0 for name in FEATURES)
    zeros, ones = (0.0,) * len(FEATURES), (1.0,) * len(FEATURES)
    cal = Calibrator(weights, 0.0, zeros, ones, answer_threshold=0.99, list_threshold=0.5)
    u = understand("门铃电量低怎么办", index, END_USER, calibrator=cal)
    assert u.kind == "clarify"
    assert 2 <= len(u.candidates) <= 3
    assert u.candidates[0].id == "doorbell_battery"
    # The runner-up is far behind: the list is offered for the best entry's sake.
    assert u.candidates[0].score >= cal.list_threshold
    assert u.candidates[1].score < cal.list_threshold / 2


def test_a_complaint_at_the_end_of_the_longest_message_webhook_reads_is_handed_off(
    index: HybridIndex,
) -> None:
    from kefu.wechat import MAX_TEXT_CHARS

    ending = "。我要投诉，转人工"
    story = ("摄像头晚上总是离线，重启以后好一阵又掉线" * 200)[: MAX_TEXT_CHARS - len(ending)]
    result = understand(story + ending, index)
    assert result.kind == "handoff"
