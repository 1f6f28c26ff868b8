"""Phone numbers and names: one spelling per number, no lookalikes, no control characters."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from kefu import accounts
from kefu.catalog.models import Installer
from kefu.extensions import db

from .conftest import csrf_from


def register(
    client: FlaskClient, phone: str, name: str = "李工", company: str = "上海安防工程有限公司"
) -> tuple[int, str]:
    token = csrf_from(client, "/installer/register")
    response = client.post(
        "/installer/register",
        data={
            "phone": phone,
            "password": "secret-pass",
            "name": name,
            "company": company,
            "csrf_token": token,
        },
    )
    return response.status_code, response.get_data(as_text=True)


@pytest.mark.parametrize(
    "typed",
    [
        "１３８００１３８０００",
        "+86 138-0013-8000",
        "（138）0013 8000",
        "0086 13800138000",
        "138\u30000013\u30008000",
    ],
)
def test_ways_of_typing_one_number_give_one_account(
    app: Flask, client: FlaskClient, typed: str
) -> None:
    assert accounts.mainland_mobile(typed) == "13800138000"
    status, _ = register(client, typed)
    assert status == 200
    status, html = register(client, "13800138000")
    assert status == 400 and "该手机号已注册" in html
    with app.app_context():
        assert db.session.query(Installer).count() == 1


@pytest.mark.parametrize(
    "lookalike",
    [
        "138\u0660\u0660\u0661\u0663\u0668\u0660\u0660\u0660",  # Arabic-Indic digits
        "138\u0966\u0966\u0967\u0969\u096e\u0966\u0966\u0966",  # Devanagari digits
        "138\u200b00138000",  # zero-width space
        "1380013800\u200d0",  # zero-width joiner
        "\u202e13800138000",  # right-to-left override
        "13800138000\x07",
        "𝟏𝟑𝟖𝟎𝟎𝟏𝟑𝟖𝟎𝟎𝟎",  # mathematical bold digits
    ],
)
def test_a_number_that_only_looks_like_one_cannot_register(
    app: Flask, client: FlaskClient, lookalike: str
) -> None:
    assert accounts.mainland_mobile(lookalike) is None
    status, html = register(client, lookalike)
    assert status == 400 and "请填写 11 位手机号" in html
    with app.app_context():
        assert db.session.query(Installer).count() == 0


def test_names_are_normalised_and_control_characters_refused(
    app: Flask, client: FlaskClient
) -> None:
    status, html = register(client, "13800138001", name="李\u200b工")
    assert status == 400 and "请填写姓名" in html
    status, html = register(client, "13800138001", company="安防\x1b[31m公司")
    assert status == 400 and "请填写公司名称" in html
    status, _ = register(client, "13800138001", name="  王   师傅 ", company="ＡＢＣ安防　公司")
    assert status == 200
    with app.app_context():
        installer = accounts.by_phone("１３８００１３８００１")
        assert installer is not None
        assert (installer.name, installer.company) == ("王 师傅", "ABC安防 公司")
