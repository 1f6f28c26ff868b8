"""The one adapter between kefu and wechatpy: signatures, crypto, parsing, replies and API clients.

Nothing else in kefu imports wechatpy. Two outside rules shape this module:
- WeChat waits 5 s for a passive reply, so nothing here on the reply path talks to WeChat.
- wechatpy has no HTTP timeout by default and keeps access-token expiry per process, so the API
  clients built here always carry a timeout and keep the token in shared storage (Redis or the
  database) whose TTL, not the process, decides when it is stale.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from wechatpy import parse_message
from wechatpy.client import WeChatClient
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException, WeChatException
from wechatpy.oauth import WeChatOAuth
from wechatpy.replies import TextReply
from wechatpy.session import SessionStorage
from wechatpy.utils import check_signature


class UnreadableMessage(Exception):
    """The body could not be decrypted or parsed as a WeChat message."""


class WeChatApiError(Exception):
    """A WeChat API call failed (network, timeout or an errcode)."""


@dataclass(frozen=True)
class Inbound:
    """A message or event from WeChat, in kefu's own terms."""

    kind: str  # text | voice | image | location | link | video | event | unknown
    openid: str
    account: str  # the official account's id (ToUserName), the reply's sender
    create_time: int
    msg_id: int = 0
    text: str = ""  # text content, or voice recognition
    event: str = ""  # subscribe | unsubscribe | scan | click | kf_close_session ...
    event_key: str = ""  # scene (``qrscene_`` removed) or menu key
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def dedupe_key(self) -> str:
        """Key for WeChat's retries: MsgId for messages, sender+CreateTime+event for events."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        return f"evt:{self.openid}:{self.create_time}:{self.event}:{self.event_key}"


def signature_valid(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """Whether WeChat's URL signature over token, timestamp and nonce is right."""
    if not (token and signature and timestamp and nonce):
        return False
    try:
        check_signature(token, signature, timestamp, nonce)
    except InvalidSignatureException:
        return False
    return True


class Crypto:
    """Safe-mode (AES) message encryption bound to one official account."""

    def __init__(self, token: str, encoding_aes_key: str, app_id: str) -> None:
        self._crypto = WeChatCrypto(token, encoding_aes_key, app_id)

    def decrypt(self, body: str, msg_signature: str, timestamp: str, nonce: str) -> str:
        """Check msg_signature and return the plaintext XML."""
        try:
            return str(self._crypto.decrypt_message(body, msg_signature, timestamp, nonce))
        except Exception as exc:  # wechatpy raises many types on bad input
            raise UnreadableMessage(f"cannot decrypt: {type(exc).__name__}") from exc

    def encrypt(self, xml: str, nonce: str, timestamp: str | None = None) -> str:
        """Encrypt a plaintext reply into the envelope WeChat expects."""
        return str(self._crypto.encrypt_message(xml, nonce, timestamp or str(int(time.time()))))


_EVENT_NAMES = {"subscribe_scan": "subscribe"}


def parse(xml: str) -> Inbound:
    """Parse plaintext XML from WeChat into an :class:`Inbound`."""
    try:
        msg = parse_message(xml)
    except Exception as exc:  # malformed XML, missing MsgType, ...
        raise UnreadableMessage(f"cannot parse: {type(exc).__name__}") from exc
    if msg is None:
        raise UnreadableMessage("empty body")
    raw: dict[str, Any] = getattr(msg, "_data", {})
    openid = str(raw.get("FromUserName") or "")
    if not openid:
        raise UnreadableMessage("no FromUserName")
    kind = str(msg.type)
    common = {
        "openid": openid,
        "account": str(raw.get("ToUserName") or ""),
        "create_time": _int(raw.get("CreateTime")),
        "msg_id": _int(raw.get("MsgId")),
    }
    if kind == "text":
        return Inbound(kind="text", text=str(raw.get("Content") or ""), **common)
    if kind == "voice":
        # Recognition is present only when the account enabled speech recognition.
        return Inbound(kind="voice", text=str(raw.get("Recognition") or ""), **common)
    if kind == "location":
        extra = {"label": str(raw.get("Label") or "")}
        return Inbound(kind="location", extra=extra, **common)
    if kind == "link":
        extra = {"title": str(raw.get("Title") or ""), "url": str(raw.get("Url") or "")}
        return Inbound(kind="link", extra=extra, **common)
    if kind in {"image", "video", "shortvideo"}:
        return Inbound(kind="image" if kind == "image" else "video", **common)
    if kind == "event":
        event = str(getattr(msg, "event", "") or raw.get("Event") or "").lower()
        event = _EVENT_NAMES.get(event, event)
        key = str(raw.get("EventKey") or "")
        if event == "subscribe" and key.startswith("qrscene_"):
            # Following through a parametric QR code: EventKey is "qrscene_" + scene.
            key = key[len("qrscene_") :]
        return Inbound(kind="event", event=event, event_key=key, **common)
    return Inbound(kind="unknown", **common)


def _int(value: Any) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return 0


def text_reply(inbound: Inbound, text: str) -> str:
    """Render a passive text reply to ``inbound``."""
    return str(TextReply(source=inbound.account, target=inbound.openid, content=text).render())


def transfer_reply(inbound: Inbound, kf_account: str = "") -> str:
    """Render ``transfer_customer_service``, naming an agent account when one is configured.

    wechatpy's TransferCustomerServiceReply cannot carry TransInfo/KfAccount, so this is
    rendered here in WeChat's documented shape.
    """
    trans_info = ""
    if kf_account:
        trans_info = (
            f"<TransInfo><KfAccount><![CDATA[{_cdata(kf_account)}]]></KfAccount></TransInfo>"
        )
    return (
        "<xml>"
        f"<ToUserName><![CDATA[{_cdata(inbound.openid)}]]></ToUserName>"
        f"<FromUserName><![CDATA[{_cdata(inbound.account)}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime>"
        "<MsgType><![CDATA[transfer_customer_service]]></MsgType>"
        f"{trans_info}"
        "</xml>"
    )


def _cdata(value: str) -> str:
    # A literal "]]>" would close the CDATA section early.
    return value.replace("]]>", "]]]]><![CDATA[>")


# ---------------------------------------------------------------------------------------------
# API clients (never used on the passive-reply path)


class SharedStorage(SessionStorage):  # type: ignore[misc]
    """wechatpy session storage over a shared backend, so every worker sees one token."""

    def __init__(self, backend: TokenBackend) -> None:
        self.backend = backend

    def get(self, key: str, default: Any = None) -> Any:
        value = self.backend.get(key)
        return default if value is None else value

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is None:
            return
        # Refresh a minute early: WeChat rejects a token at its exact expiry.
        self.backend.set(key, str(value), max(1, (ttl or 7200) - 60))

    def delete(self, key: str) -> None:
        self.backend.delete(key)


class TokenBackend:
    """Shared storage with expiry: implemented over Redis or the ``settings`` table."""

    def get(self, key: str) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def set(self, key: str, value: str, ttl: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def delete(self, key: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class RedisTokenBackend(TokenBackend):
    """Token storage in Redis."""

    def __init__(self, redis_client: Any, prefix: str = "kefu:wechat:") -> None:
        self.redis = redis_client
        self.prefix = prefix

    def get(self, key: str) -> str | None:
        value = self.redis.get(self.prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    def set(self, key: str, value: str, ttl: int) -> None:
        self.redis.set(self.prefix + key, value, ex=ttl)

    def delete(self, key: str) -> None:
        self.redis.delete(self.prefix + key)


class _SharedTokenClient(WeChatClient):  # type: ignore[misc]
    """WeChatClient that trusts the shared storage's TTL instead of per-process expiry."""

    def fetch_access_token(self) -> dict[str, Any]:
        """Fetch a token with a timeout and from API_BASE_URL (wechatpy hard-codes both away)."""
        response = self._http.get(
            self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
            timeout=self.timeout,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        if result.get("errcode"):
            raise WeChatApiError(f"token: {result.get('errcode')} {result.get('errmsg')}")
        self.session.set(
            self.access_token_key, result["access_token"], result.get("expires_in", 7200)
        )
        return result

    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        if token:
            return str(token)
        self.fetch_access_token()
        return str(self.session.get(self.access_token_key))


class ApiClient:
    """The official account's server API (menus, customer-service messages) with timeouts."""

    def __init__(
        self,
        app_id: str,
        app_secret: str,
        backend: TokenBackend,
        timeout: float,
        api_base_url: str = "",
    ) -> None:
        self._client = _SharedTokenClient(
            app_id, app_secret, session=SharedStorage(backend), timeout=timeout
        )
        if api_base_url:
            self._client.API_BASE_URL = api_base_url.rstrip("/") + "/cgi-bin/"

    def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the account's custom menu."""
        self._call(self._client.menu.create, menu)

    def send_text(self, openid: str, text: str) -> None:
        """Send a customer-service text message (allowed within 48 h of the user's last message)."""
        self._call(self._client.message.send_text, openid, text)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except WeChatApiError:
            raise
        except (WeChatException, OSError) as exc:
            raise WeChatApiError(str(exc)) from exc
        except Exception as exc:  # requests' timeouts and connection errors
            if type(exc).__module__.startswith("requests"):
                raise WeChatApiError(str(exc)) from exc
            raise


class _TimeoutOAuth(WeChatOAuth):  # type: ignore[misc]
    """WeChatOAuth with an HTTP timeout (wechatpy sets none)."""

    timeout: float = 3.0

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        return super()._request(method, url_or_endpoint, **kwargs)


class OAuth:
    """WeChat web authorisation (``snsapi_base``): learn a visitor's openid inside WeChat."""

    def __init__(
        self, app_id: str, app_secret: str, timeout: float, api_base_url: str = ""
    ) -> None:
        self.app_id = app_id
        self.app_secret = app_secret
        self.timeout = timeout
        self.api_base_url = api_base_url

    def _oauth(self, redirect_uri: str, state: str = "") -> _TimeoutOAuth:
        oauth = _TimeoutOAuth(self.app_id, self.app_secret, redirect_uri, "snsapi_base", state)
        oauth.timeout = self.timeout
        if self.api_base_url:
            oauth.API_BASE_URL = self.api_base_url.rstrip("/") + "/"
        return oauth

    def authorize_url(self, redirect_uri: str, state: str) -> str:
        """The URL that sends the visitor through WeChat's silent authorisation."""
        return str(self._oauth(redirect_uri, state).authorize_url)

    def openid_for_code(self, code: str) -> str:
        """Exchange the ``code`` WeChat appended to the redirect for the visitor's openid."""
        oauth = self._oauth("")
        try:
            result = oauth.fetch_access_token(code)
        except Exception as exc:
            raise WeChatApiError(str(exc)) from exc
        openid = result.get("openid") if isinstance(result, dict) else None
        if not openid:
            raise WeChatApiError("no openid in OAuth response")
        return str(openid)


__all__ = [
    "ApiClient",
    "Crypto",
    "Inbound",
    "OAuth",
    "RedisTokenBackend",
    "TokenBackend",
    "UnreadableMessage",
    "WeChatApiError",
    "parse",
    "signature_valid",
    "text_reply",
    "transfer_reply",
]
