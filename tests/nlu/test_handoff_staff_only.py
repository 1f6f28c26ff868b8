"""Requests only staff can carry out, and complaints about waiting, go to a person; the same
topics asked as how-to or policy questions are left to the knowledge base."""

from __future__ import annotations

import pytest

from kefu.nlu import HybridIndex, KbDoc, detect_handoff, understand


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        # Refunds and returns asked for, or not arrived; asked about, they are KB questions.
        ("申请退款，不想用了", "security"),
        ("这台我要退货", "security"),
        ("退的货上周就到你们那了 钱到现在还没到账", "security"),
        ("退货政策是怎样的", None),
        ("退货 退货 这东西我不要了", "security"),
        ("刚收到货不想要了，能退吗", None),
        ("没拆封的能退货吗", None),
        # Orders: a mistake to correct, a number to look up, a parcel that has not left.
        ("昨天拍错颜色了 要白色的", "security"),
        ("单号 88120034567 帮忙看看", "security"),
        ("付款三天了还没发货", "security"),
        ("买错型号了 没拆封 可以退吗", None),
        # Invoices are issued by staff; whether one can be had is a KB question.
        ("公司报销 要开发票", "security"),
        ("发票税号开错了", "security"),
        ("你们能开发票吗", None),
        # Someone else's data or binding.
        ("这个SN是谁激活的", "security"),
        ("设备一直绑在她的账号上 联系不到人", "security"),
        ("能不能后台强制解绑", "security"),
        ("客户的账号能不能后台帮我改过来", "security"),
        ("家里的设备想转到我名下", "security"),
        ("经销商后台的密码忘了 麻烦重置", "security"),
        ("怎么设置门锁管理员密码", None),
        ("有没有办法绕过密码直接进门", "security"),
        ("让扫地机绕开宠物碗", None),
        ("账号被盗了 设备被人删了", "security"),
        ("扣了一笔钱 还以为被盗刷了 原来是自动续费", None),
        ("前年找人装的 一直好好的 今天突然离线", None),
        ("找个人来帮我装一下", "requested"),
        # Waiting and compensation, including Cantonese.
        ("送修快一个月了 还没寄回", "angry"),
        ("排队等咗成个礼拜", "angry"),
        ("问咗三日都冇人覆", "angry"),
        ("有冇人可以打俾我", "requested"),  # Cantonese, read as standard Chinese too
        ("你哋可唔可以幫我解綁佢嘅賬號", "security"),
        ("點樣解綁自己嘅門鎖", None),
        ("漏水泡坏了地板 你们必须赔", "angry"),
        # Waiting a while for a reply is a complaint; for a device to react, a how-to question.
        ("等了半天，怎么还没人理我", "angry"),
        ("客服等了好久了", "angry"),
        ("插了充电宝等了半天 键盘还是不亮 咋办", None),
        ("升级等了好久都没反应怎么办", None),
        ("约好上门安装 师傅一直不来", "angry"),
        ("停电以后还没来电 门锁怎么开", None),
        # Being phoned, a person, a salesperson; a phone watch's calls are a feature.
        ("可以打个电话给我吗", "requested"),
        ("麻烦回个电话", "requested"),
        ("我要跟人说话", "requested"),
        ("采购一百台 找个销售对接", "requested"),
        ("上课时间家长打电话给孩子能打通吗", None),
        ("按SOS键会先打给谁", None),
    ],
)
def test_staff_only_and_complaints(message: str, reason: str | None) -> None:
    assert detect_handoff(message) == reason


@pytest.mark.parametrize(
    "text",
    [
        "摄像头的人工智能识别怎么开",  # artificial intelligence, not a person
        "流媒体后视镜倒车画面是反的",  # streaming-media mirror, not the press
        "多媒体文件在哪里看",
    ],
)
def test_words_that_only_contain_a_handoff_word_are_not_handoffs(text: str) -> None:
    assert detect_handoff(text) is None


def test_a_complaint_word_the_kb_uses_for_its_product_is_vocabulary() -> None:
    # A robot vacuum picks up 垃圾: in its KB the word is a question's, not an insult.
    vacuum = HybridIndex.build(
        [
            KbDoc(
                "bin",
                "垃圾盒满了怎么清理？",
                ("尘盒怎么倒垃圾",),
                "all",
                answer="取出尘盒倒掉垃圾。",
            ),
            KbDoc("dock", "扫地机回不了基站怎么办？", ("回充失败",), "all"),
        ]
    )
    assert detect_handoff("垃圾盒满了怎么倒", vacuum.uses_word) is None
    assert understand("垃圾盒满了怎么倒", vacuum).kind != "handoff"
    # ... while insults and complaints are still complaints there, and elsewhere the word is one.
    for insult in ("你们这什么垃圾产品", "真垃圾", "垃圾售后"):
        assert detect_handoff(insult, vacuum.uses_word) == "angry"
    assert detect_handoff("垃圾盒满了怎么倒") == "angry"
    for person in ("我要找人工", "人工", "转人工客服"):
        assert detect_handoff(person, vacuum.uses_word) == "requested"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("能不能你们后台把门给我开了 派出所让我自己跟你们联系", "security"),
        ("客服能不能远程把门打开 我在门口", "security"),
        ("你们的app怎么把门打开", None),
        ("你们这个锁把门反锁了 开了半天打不开", None),
    ],
)
def test_staff_asked_to_open_the_door_is_staff_only(text: str, reason: str | None) -> None:
    assert detect_handoff(text) == reason
