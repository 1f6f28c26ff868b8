"""The hybrid index and decision as a user would notice them: scripts, typos, handoffs, saving."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from kefu.evaluation import Case, Result, Scores, missing_ids
from kefu.nlu import HybridIndex, KbDoc, Understanding, detect_handoff, understand
from kefu.nlu.prep import prepare
from kefu.nlu.tuning import TUNING
from kefu.nlu.understand import READ_CHARS

ALL = frozenset({"all", "end_user", "installer"})

KB = [
    KbDoc(
        "doorbell_battery",
        "可视门铃的电池怎么充电？",
        ("门铃电量低", "门铃要拆下来充电吗"),
        "end_user",
        ("门铃", "电池"),
        "取下门铃，用 USB 线充电约 4 小时。",
        ("doorbell",),
    ),
    KbDoc(
        "lock_battery",
        "智能锁没电了怎么办？",
        ("门锁电量低", "门锁没电了怎么开门"),
        "end_user",
        ("门锁", "电池"),
        "用充电宝接锁体下方的应急 USB 口供电后开门。",
        ("lock",),
    ),
    KbDoc(
        "lock_fingerprint",
        "指纹锁怎么添加新的指纹？",
        ("录入指纹", "再加一个手指"),
        "end_user",
        ("指纹",),
        "在锁上进入管理菜单，选择添加用户-指纹，按提示按压 6 次。",
        ("lock",),
    ),
    KbDoc(
        "camera_offline",
        "摄像头在App里显示离线怎么办？",
        ("监控设备不在线", "摄像头连不上了"),
        "all",
        ("离线",),
        "重启路由器和摄像头，等待 3 分钟后下拉刷新。",
        ("camera",),
    ),
    KbDoc(
        "unbind_own",
        "怎么解绑自己账号下的设备？",
        ("删除设备", "把摄像头从账号移除"),
        "all",
        ("解绑",),
        "在 App 设备设置里点“删除设备”，设备即与您的账号解绑。",
    ),
    KbDoc(
        "lock_password_change",
        "门锁的开门密码怎么修改？",
        ("改开门密码", "换个门锁密码"),
        "end_user",
        ("密码",),
        "进入锁的管理菜单，选择修改密码，输入两次新密码。",
        ("lock",),
    ),
]


@pytest.fixture(scope="module")
def index() -> HybridIndex:
    return HybridIndex.build(KB)


def answered(u: Understanding) -> str | None:
    return u.candidates[0].id if u.kind == "answer" else None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("門鈴電量低點算好", "doorbell_battery"),  # Traditional, Cantonese flavour
        ("ＡＰＰ里摄像头显示离线了！！", "camera_offline"),  # full width
        ("指问锁怎么再录一个指纹", "lock_fingerprint"),  # typed by sound
        ("menling dianliang di", "doorbell_battery"),  # pinyin
        ("门铃电量低了😭😭", "doorbell_battery"),  # emoji
    ],
)
def test_scripts_typos_and_pinyin_find_the_entry(
    index: HybridIndex, text: str, expected: str
) -> None:
    assert answered(understand(text, index, ALL)) == expected


@pytest.mark.parametrize(
    ("text", "mandarin"),
    [
        ("部機冇反應，係咪系統壞咗", "这台机器没有反应 是不是系统坏了"),
        ("密碼唔記得咗 點樣重新設定？", "密码忘了 怎么重新设定"),
        ("保養期係幾耐？", "保养期是多久"),
        ("想個燈一見到人就開 喺邊度設定", "想个灯一见到人就开 在哪里设定"),
    ],
)
def test_written_cantonese_reads_as_standard_chinese(text: str, mandarin: str) -> None:
    assert prepare(text) == mandarin


@pytest.mark.parametrize(
    "text",
    ["这个系统怎么设置", "联系客服，重点解决离线问题", "监控里的画面时间点样式不对"],
)
def test_mandarin_is_left_as_it_is(text: str) -> None:
    # 系, 点解 and 点样 are Cantonese only in a message written in Cantonese.
    assert prepare(text) == " ".join(text.replace("，", " ").split())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("門鎖冇電咗，點樣先開到門", "lock_battery"),
        ("我哋屋企部鎖冇晒電 開唔到門", "lock_battery"),
    ],
)
def test_cantonese_questions_find_the_entry(index: HybridIndex, text: str, expected: str) -> None:
    assert answered(understand(text, index, ALL)) == expected


def test_a_cantonese_question_is_not_mistaken_for_a_request_for_a_person(
    index: HybridIndex,
) -> None:
    u = understand("部機喺app度睇唔到 係咪斷咗線", index, ALL)
    assert u.kind != "handoff"
    assert "camera_offline" in [c.id for c in u.candidates]


def test_scanned_product_narrows_the_entries(index: HybridIndex) -> None:
    # "电量低" alone fits the doorbell and the lock; the scanned device decides.
    u = understand("电量低怎么办", index, ALL, frozenset({"lock"}))
    assert all(c.id != "doorbell_battery" for c in u.candidates)


def test_out_of_scope_gets_no_answer(index: HybridIndex) -> None:
    for text in ("今天晚上吃什么好", "你们公司招不招前端开发", "asdfgh"):
        assert understand(text, index, ALL).kind != "answer", text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "我上个月在网上买的，装在老家给我爸妈用，他们年纪大了不太会弄，门铃电量低了怎么办",
            "doorbell_battery",
        ),
        (
            "早上起来发现的 孩子说昨天晚上就这样了 我也不懂这些 指纹锁怎么再加一个手指",
            "lock_fingerprint",
        ),
    ],
)
def test_a_long_story_with_one_question_gets_that_questions_answer(
    index: HybridIndex, text: str, expected: str
) -> None:
    assert answered(understand(text, index, ALL)) == expected


def test_a_question_at_the_end_of_a_long_post_is_read(index: HybridIndex) -> None:
    # Over 200 characters of story, then the question: the search reads the post's opening
    # and its end, not its first 200 characters only.
    story = "我上个月在网上买的，装在老家给我爸妈用，他们年纪大了不太会弄，" * 8
    post = story + "指纹锁怎么再加一个手指"
    assert len(story) > READ_CHARS
    assert answered(understand(post, index, ALL)) == "lock_fingerprint"
    # A question asked first and explained after is read as well.
    first = "指纹锁怎么再加一个手指，" + story
    assert answered(understand(first, index, ALL)) == "lock_fingerprint"


def test_a_request_for_a_person_anywhere_in_a_long_post_is_heard(index: HybridIndex) -> None:
    story = "我上个月在网上买的，装在老家给我爸妈用，他们年纪大了不太会弄，" * 8
    middle = story[:150] + "转人工" + story[150:]
    assert understand(middle, index, ALL).kind == "handoff"


def test_an_agitated_tone_hands_off_only_what_the_kb_cannot_answer(index: HybridIndex) -> None:
    # Urgency is not a complaint: the answer is what helps.
    assert answered(understand("门锁没电了怎么开门！！！", index, ALL)) == "lock_battery"
    # Without an answer, the agitated user gets a person rather than "I don't know".
    u = understand("你们这个到底怎么回事？？？", index, ALL)
    assert (u.kind, u.reason) == ("handoff", "angry")


@pytest.mark.parametrize(
    ("text", "needs_person"),
    [
        ("有没有人", True),
        ("来人啊", True),
        ("有人吗 门锁坏了", True),
        ("门口人来人往 门铃电量低了怎么办", False),
        ("有没有人升级过固件 指纹会不会丢", False),
    ],
)
def test_asking_whether_anyone_is_there_is_told_from_talk_about_people(
    text: str, needs_person: bool
) -> None:
    assert (detect_handoff(text) == "requested") is needs_person


def test_a_product_the_kb_never_names_is_in_scope_only_where_a_kb_covers_it() -> None:
    # A lock maker's emergency power steps are no answer for a robot vacuum; a maker whose KB
    # covers its robot vacuum answers the same question.
    locks = [
        KbDoc(
            "lock_battery",
            "智能锁没电了怎么办？",
            ("门锁电量低", "门锁没电了怎么开门"),
            "all",
            answer="用充电宝接锁体下方的应急 USB 口供电后开门。",
        ),
        KbDoc("lock_users", "怎么删除门锁里的指纹？", ("删除开门密码",), "all"),
        KbDoc("nvr_hdmi", "录像机接显示器没有画面？", ("HDMI连接后黑屏",), "all"),
    ]
    question = "扫地机没电了怎么办"
    assert understand(question, HybridIndex.build(locks), ALL).kind != "answer"
    vacuums = [
        *locks[1:],
        KbDoc(
            "vacuum_battery",
            "扫地机器人没电了怎么充电？",
            ("扫地机不回充", "扫地机电量低"),
            "all",
            answer="把扫地机放回充电座，指示灯呼吸闪烁即在充电。",
        ),
    ]
    assert answered(understand(question, HybridIndex.build(vacuums), ALL)) == "vacuum_battery"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("有人吗", "requested"),
        ("能不能给我回个电话", "requested"),
        ("zhuan ren gong", "requested"),
        ("等了三天都没有人处理", "angry"),
        ("售后一直推来推去不给解决", "angry"),
        ("花了两千块买的锁坏了也没人管", "angry"),
        ("再不处理我就打12315", "angry"),
        ("我要去网上曝光你们", "angry"),
        ("二手买的锁还绑在原来主人的账号上，怎么解绑", "security"),
        ("门锁的超级密码是多少", "security"),
        ("帮我查一下这个序列号绑定在谁的账号上", "security"),
        ("帮我远程给保姆开一下门", "security"),
        ("帮我把账号的手机号改成新号码", "security"),
        ("帮我退款", "security"),
        ("把订单的收货地址改一下", "security"),
    ],
)
def test_people_who_need_a_person_get_one(text: str, reason: str) -> None:
    assert detect_handoff(text) == reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我想把自己的摄像头从账号里解绑", "unbind_own"),
        ("门锁密码怎么改", "lock_password_change"),
    ],
)
def test_own_device_how_to_with_password_or_unbind_is_answered(
    index: HybridIndex, text: str, expected: str
) -> None:
    assert detect_handoff(text) is None
    assert answered(understand(text, index, ALL)) == expected


def test_saved_index_answers_the_same(index: HybridIndex, tmp_path: Path) -> None:
    index.save(tmp_path / "idx")
    loaded = HybridIndex.load(tmp_path / "idx")
    for text in ("门铃电量低", "摄像头离线", "今天吃什么", "怎么录指纹"):
        assert understand(text, loaded, ALL) == understand(text, index, ALL)
    with pytest.raises(ValueError):
        HybridIndex.load(tmp_path / "nothing-here")


def test_scores_count_the_issue_figures() -> None:
    scores = Scores()
    scores.add(Case("a", "x"), Result("answer", "x"))
    scores.add(Case("b", "x"), Result("answer", "y"))
    scores.add(Case("c", "y"), Result("clarify", choices=("x", "y")))
    scores.add(Case("d", "none"), Result("clarify", choices=("x",)))
    scores.add(Case("e", "human"), Result("none"))
    assert (scores.correct, scores.wrong, scores.listed) == (1, 1, 1)
    assert scores.rate("kept_out") == 1.0 and scores.rate("handed_off") == 0.0
    assert not scores.meets_targets()
    assert "NOT MET" in scores.report()
    assert missing_ids([Case("a", "x"), Case("b", "none")], ["y"]) == ["x"]


def _topic_vectors(texts: Sequence[str]) -> np.ndarray:
    """Stand-in embeddings with the shape real ones have: a topic direction plus a little of
    each text's own (the topic is the digit that ends the text's first run of digits)."""
    out = []
    for text in texts:
        digits = "".join(ch if ch.isdigit() else " " for ch in text).split()
        topic = int(digits[0][-1]) if digits else 0
        base = np.random.default_rng(topic).standard_normal(64)
        own = np.random.default_rng(zlib.crc32(text.encode())).standard_normal(64)
        v = base + 0.35 * own
        out.append(v / np.linalg.norm(v))
    return np.asarray(out, dtype=np.float32)


def test_a_large_kb_is_searched_in_a_reduced_space_with_the_same_results(
    tmp_path: Path,
) -> None:
    features = ["夜视", "录像", "报警", "对讲", "云台", "配网", "存储", "分享", "升级", "时间"]
    docs = [
        KbDoc(
            f"gen_{i}",
            f"第{i}号摄像机的{features[i % 10]}怎么设置",
            (f"{i}号{features[i % 10]}",),
            "all",
        )
        for i in range(400)
    ]
    reduced = dataclasses.replace(TUNING, coarse_min_entries=300, coarse_dim=16)
    exact = dataclasses.replace(TUNING, coarse_min_entries=10**9)
    HybridIndex.build(docs, reduced, embed=_topic_vectors).save(tmp_path / "reduced")
    HybridIndex.build(docs, exact, embed=_topic_vectors).save(tmp_path / "exact")
    small, full = HybridIndex.load(tmp_path / "reduced"), HybridIndex.load(tmp_path / "exact")
    for i in range(0, 400, 7):
        # The meaning of one entry's own phrasing, in words every entry shares: only the
        # dense search can find it, and it must come first.
        text, vector = "怎么设置", _topic_vectors([f"{i}号{features[i % 10]}"])[0]
        best = [
            max(ix.candidates(text, ALL, vector=vector, tuning=t), key=lambda f: f.dense)
            for ix, t in ((small, reduced), (full, exact))
        ]
        assert small.ids[best[0].row] == full.ids[best[1].row] == f"gen_{i}", text
        assert best[0].dense == pytest.approx(best[1].dense)


@pytest.mark.parametrize(
    ("text", "other"),
    [
        ("德施曼的门锁没电了怎么办", True),  # another maker's product of the KB's own kind
        ("小米门锁怎么改密码", True),
        ("凯迪仕K20门锁怎么改密码", True),  # a model code between the maker and the noun
        ("科沃斯的扫地机报错了", True),  # a product the KB never mentions
        ("门锁多少钱一把", True),  # sales, not support
        ("换了小米路由器以后摄像头连不上了", False),  # the router is only the setting
        ("华为手机上摄像头显示离线", False),
        ("门锁没电了怎么办", False),
    ],
)
def test_another_makers_product_is_told_apart_from_a_setting(
    index: HybridIndex, text: str, other: bool
) -> None:
    assert index.foreign(text) is other


def test_the_kbs_own_brand_and_its_prices_are_in_scope() -> None:
    branded = [
        dataclasses.replace(d, question=f"小米{d.question}") if d.products == ("lock",) else d
        for d in KB
    ]
    priced = [*branded, KbDoc("lock_price", "门锁多少钱？", (), "all", (), "标准版 1299 元。")]
    index = HybridIndex.build(priced)
    assert not index.foreign("小米门锁怎么改密码")
    assert not index.foreign("门锁多少钱一把")
    assert index.foreign("德施曼的门锁没电了怎么办")
    # A maker the KB mentions in passing (phones' settings) is still another maker.
    mentioned = [
        dataclasses.replace(d, answer=d.answer + "华为、小米手机需允许后台运行。")
        if d.id == "camera_offline"
        else d
        for d in KB
    ]
    assert HybridIndex.build(mentioned).foreign("小米门锁怎么改密码")
