"""A neighbour mentioned next to the user's own camera is not a security request."""

from __future__ import annotations

import pytest

from kefu.nlu import detect_handoff
from kefu.nlu.text import compact, normalize


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("邻居说我的摄像头能看到他家窗户，能挡掉那部分吗", None),
        ("能把隔壁店铺摄像头昨天的录像调给我吗", "security"),
    ],
)
def test_own_camera_versus_someone_elses(message: str, reason: str | None) -> None:
    assert detect_handoff(compact(normalize(message))) == reason
