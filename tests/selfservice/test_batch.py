"""Batch warranty lookup for installers: paste or upload up to 100 serials, read or download."""

from __future__ import annotations

import csv
import io

from flask.testing import FlaskClient

from .conftest import Catalog, csrf_from, log_in


def submit(client: FlaskClient, **data: object) -> tuple[int, str]:
    data["csrf_token"] = csrf_from(client, "/installer/batch")
    response = client.post("/installer/batch", data=data, content_type="multipart/form-data")
    return response.status_code, response.get_data(as_text=True)


def rows_of(html: str) -> list[str]:
    body = html[html.index("<tbody>") : html.index("</tbody>")]
    return [row.split("</tr>")[0] for row in body.split("<tr")[1:]]


def test_batch_lookup_needs_an_approved_installer(client: FlaskClient) -> None:
    response = client.get("/installer/batch")
    assert response.status_code == 302 and "/installer/login" in response.headers["Location"]


def test_pasted_serials_give_a_table_in_input_order(
    client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    log_in(client)
    pasted = "as2019c3h000002\nAS2024C3H000001, AS2099X000009\n\nAS2024C3H000001；AS2025C3H000004"
    status, html = submit(client, serials=pasted)
    assert status == 200
    rows = rows_of(html)
    assert [r.count("AS20") for r in rows] == [1, 1, 1, 1]  # duplicate collapsed
    assert "AS2019C3H000002" in rows[0] and "过保" in rows[0] and "2021-02-28" in rows[0]
    assert "购买凭证日期" in rows[0]
    assert "AS2024C3H000001" in rows[1] and "保内" in rows[1]
    assert "AS2099X000009" in rows[2] and "未找到" in rows[2]
    assert "AS2025C3H000004" in rows[3] and "未知" in rows[3] and "无可用日期" in rows[3]
    assert "共 4 个：保内 1，过保 1，日期未知 1，未找到 1" in html
    assert 'data-busy="查询中…"' in html  # the submit button's loading state


def test_csv_upload_with_a_header_and_in_gbk(
    client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    log_in(client)
    text = "备注,serial\n第一台,AS2024C3H000001\n第二台,AS2019C3H000002\n"
    upload = (io.BytesIO(text.encode("gb18030")), "devices.csv")
    status, html = submit(client, file=upload)
    assert status == 200
    rows = rows_of(html)
    assert len(rows) == 2 and "AS2024C3H000001" in rows[0] and "AS2019C3H000002" in rows[1]
    # Without a header, the first column holds the serials.
    plain = (io.BytesIO(b"AS2025L1000005,whatever\n"), "plain.csv")
    status, html = submit(client, file=plain)
    assert len(rows_of(html)) == 1 and "AS2025L1000005" in html


def test_more_than_100_or_nothing_is_a_clear_error(
    client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    log_in(client)
    status, html = submit(client, serials=" ".join(f"AS2030X{i:06d}" for i in range(101)))
    assert status == 400 and "一次最多查询 100 个序列号（收到 101 个）" in html
    assert "<tbody>" not in html
    status, html = submit(client, serials="  \n ")
    assert status == 400 and "请粘贴序列号，或选择一个 CSV 文件" in html
    status, html = submit(client, serials=" ".join(f"AS2030X{i:06d}" for i in range(100)))
    assert status == 200 and len(rows_of(html)) == 100


def test_csv_download_matches_the_table(
    client: FlaskClient, catalog: Catalog, installer: int
) -> None:
    log_in(client)
    _, html = submit(client, serials="AS2019C3H000002\nAS2099X000009\n=HYPERLINK(1)")
    assert 'action="/installer/batch.csv"' in html
    token = csrf_from(client, "/installer/batch")
    response = client.post(
        "/installer/batch.csv",
        data={
            "serials": "AS2019C3H000002 AS2099X000009 =HYPERLINK(1) AS2025C3H000004",
            "csrf_token": token,
        },
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")  # Excel needs the BOM to read UTF-8 Chinese
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == ["序列号", "型号", "保修状态", "保修截止", "保修依据"]
    assert rows[1] == [
        "AS2019C3H000002",
        "AS-C3H C3H 室外摄像头",
        "过保",
        "2021-02-28",
        "购买凭证日期",
    ]
    assert rows[2][:3] == ["AS2099X000009", "", "未找到"]
    assert rows[3][0].startswith("'=")  # never a live formula in Excel
    # No date on record: unknown, as the page says, not expired.
    assert rows[4][0] == "AS2025C3H000004" and rows[4][2] == "未知"
