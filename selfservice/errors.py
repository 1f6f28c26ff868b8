"""Friendly error pages in the visitor's language; never a stack trace."""

from __future__ import annotations

from flask import render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from kefu.security import InvalidCharacters

from .blueprint import bp


def _page(status: int, title: str, message: str) -> tuple[str, int]:
    page = render_template("selfservice/error.html", status=status, title=title, message=message)
    return page, status


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[str, int] | Response:
    """4xx/5xx from any page (unhandled exceptions arrive as 500), in the site's layout."""
    status = exc.code or 500
    if request.blueprint == "bot":
        # WeChat reads status codes, not pages: keep the webhook's plain answers.
        return exc.get_response()
    if isinstance(exc, InvalidCharacters):
        return _page(
            400, _("请求含有无效字符"), _("链接或填写的内容里有无法识别的字符，请检查后重新输入。")
        )
    if isinstance(exc, CSRFError):
        return _page(400, _("页面已过期"), _("页面停留太久或 Cookie 被禁用，请返回刷新后重试。"))
    if status == 404:
        return _page(
            404, _("找不到这个页面"), _("链接可能有误或已失效。请核对设备上的二维码，或联系客服。")
        )
    if status == 429:
        return _page(429, _("查询太频繁"), _("请稍后再试。"))
    if status == 413:
        return _page(413, _("文件太大"), _("请上传 1 MB 以内的文件。"))
    if status == 405:
        return _page(405, _("无法这样访问"), _("请从页面上的按钮或链接进入。"))
    if status >= 500:
        return _page(status, _("服务暂时不可用"), _("请稍后再试，或联系客服。"))
    return _page(status, _("请求有误"), _("请返回上一页检查后重试。"))
