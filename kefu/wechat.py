"""The one adapter between kefu and wechatpy: signatures, crypto, parsing, replies and API clients.

Nothing else in kefu imports wechatpy. Outside rules that shape this module:
- WeChat waits 5 s for a passive reply, so nothing here on the reply path talks to WeChat.
- A delivery is trusted only as far as its signatures go: ``signature`` covers the token, the
  timestamp and the nonce (not the body), ``msg_signature`` also covers the encrypted body. So a
  plaintext body is only as good as the freshness of its URL, and safe mode accepts nothing else.
- Bodies come from the internet: they are parsed with defusedxml (no DTDs, no entities), read
  field by field with every length capped, and replies are built with ElementTree, which escapes,
  never by pasting strings into XML.
- The API client fetches its token from ``/cgi-bin/stable_token`` (another system using the
  same AppSecret does not invalidate it), keeps it in shared storage, lets one process at a time
  refresh it, and retries a rejected token once, never in a loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

import redis
import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _safe_fromstring
from wechatpy.crypto import PrpCrypto
from wechatpy.oauth import WeChatOAuth

# WeChat's text messages are at most 2,048 bytes; anything longer is not a person typing, so no
# more than that is read of a text: a forged 900 KB message costs what a long real one does.
MAX_TEXT_CHARS = 2048
# A CLICK key is at most 128 bytes and a VIEW URL 1,024; other fields are short.
MAX_EVENT_KEY_CHARS = 2048
MAX_FIELD_CHARS = 512
# WeChat's messages are flat (ScanCodeInfo/ScanResult is the deepest at 3 levels).
MAX_XML_DEPTH = 8
DEFAULT_MAX_AGE = 300

log = logging.getLogger(__name__)

# Fields read in full up to their own limits; the encrypted envelope is bounded by the body size.
_FIELD_CAPS = {
    "Content": MAX_TEXT_CHARS,
    "Recognition": MAX_TEXT_CHARS,
    "EventKey": MAX_EVENT_KEY_CHARS,
    "Encrypt": 2**31,
}
_OPENID_RE = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_HEX40_RE = re.compile(r"^[0-9a-fA-F]{40}$")
_ECHOSTR_RE = re.compile(r"^[A-Za-z0-9_+/=-]{1,512}$")
# Characters XML 1.0 cannot carry at all; they are dropped from replies.
_XML_INVALID_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class MessageMode(StrEnum):
    """How the account's 消息加解密方式 is set in the official-account admin."""

    PLAIN = "plain"  # 明文模式: signed, not encrypted
    COMPATIBLE = "compatible"  # 兼容模式: plaintext and encrypted both accepted
    SAFE = "safe"  # 安全模式: encrypted only


class UnreadableMessage(Exception):
    """The body could not be decrypted or parsed as a WeChat message (answer ``success``)."""


class Refused(Exception):
    """Not a delivery from WeChat: bad, missing, expired or reused signature (answer 403)."""


class WeChatApiError(Exception):
    """A WeChat API call failed; ``code`` is WeChat's errcode (None for network errors)."""

    retryable = True  # whether sending the same call later may succeed

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TokenRejected(WeChatApiError):
    """WeChat kept rejecting the access token (40001/40014/42001) after one refresh."""


class QuotaExceeded(WeChatApiError):
    """45009: the account's daily quota for this API is used up (retry tomorrow)."""


class ReplyWindowClosed(WeChatApiError):
    """45015: the user last wrote more than 48 hours ago; a customer-service message cannot go."""

    retryable = False


class TooManyMessages(WeChatApiError):
    """45047: too many customer-service messages since the user's last message."""


class ApiUnauthorized(WeChatApiError):
    """48001: the account has no permission for this API (not verified, or not enabled)."""

    retryable = False


ERRORS: dict[int, type[WeChatApiError]] = {
    40001: TokenRejected,
    40014: TokenRejected,
    42001: TokenRejected,
    45009: QuotaExceeded,
    45015: ReplyWindowClosed,
    45047: TooManyMessages,
    48001: ApiUnauthorized,
}


@dataclass(frozen=True)
class Inbound:
    """A message or event from WeChat, in kefu's own terms."""

    kind: str  # text | voice | image | location | link | video | event | unknown
    openid: str
    account: str  # the official account's id (ToUserName), the reply's sender
    create_time: int
    msg_id: int = 0
    text: str = ""  # text content, or voice recognition
    # subscribe | subscribe_scan_product | unsubscribe | scan | click | view | scancode_waitmsg |
    # kf_close_session ... lower-cased; anything WeChat may add later comes through as it is.
    event: str = ""
    event_key: str = ""  # EventKey as sent (menu key, URL, ``qrscene_`` + scene, ...)
    # Scene of a parametric QR code: ``qrscene_`` removed on subscribe, as sent on SCAN.
    scene: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # How it came: the reply to an encrypted delivery is encrypted with the same nonce.
    encrypted: bool = False
    nonce: str = ""
    timestamp: str = ""

    @property
    def dedupe_key(self) -> str:
        """Key for WeChat's retries: MsgId for messages, sender+CreateTime+event for events."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        key = f"evt:{self.openid}:{self.create_time}:{self.event}:{self.event_key}"
        if len(key) > 120:
            # Event keys may be 1 KB URLs; the stored key stays short and just as unique.
            key = "evt:" + hashlib.sha256(key.encode()).hexdigest()
        return key


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _same(expected: str, given: str) -> bool:
    # Constant time: a signature compared byte by byte leaks how much of a guess is right.
    return hmac.compare_digest(expected.encode(), given.lower().encode())


def signature_valid(token: str, signature: str, timestamp: str, nonce: str) -> bool:
    """Whether WeChat's URL signature over token, timestamp and nonce is right."""
    if not (token and signature and timestamp and nonce) or not _HEX40_RE.match(signature):
        return False
    return _same(_sha1(token, timestamp, nonce), signature)


class NonceStore:
    """Remembers which delivery each signed (timestamp, nonce) pair carried, for a while."""

    def claim(self, timestamp: str, nonce: str, delivery: str, ttl: int) -> bool:
        """Record the pair for ``delivery``; False when it already carried another delivery."""
        raise NotImplementedError  # pragma: no cover - interface


class RedisNonceStore(NonceStore):
    """Nonces in Redis (``SET NX EX``), shared by every worker."""

    def __init__(self, redis_client: Any, prefix: str = "kefu:nonce:") -> None:
        self.redis = redis_client
        self.prefix = prefix

    def claim(self, timestamp: str, nonce: str, delivery: str, ttl: int) -> bool:
        """Record the pair for ``delivery``; False when it already carried another delivery."""
        key = f"{self.prefix}{timestamp}:{nonce}"
        try:
            if self.redis.set(key, delivery, nx=True, ex=ttl):
                return True
            seen = self.redis.get(key)
        except redis.RedisError as exc:
            # Redis down: the signature and its time window still hold, and the dedupe record
            # still stops a replayed message from being handled twice; losing messages is worse.
            log.warning("nonce not checked, Redis unavailable: %s", exc)
            return True
        seen = seen.decode() if isinstance(seen, bytes) else seen
        return seen is None or seen == delivery


@dataclass(frozen=True)
class Endpoint:
    """The server URL's side of WeChat's protocol, bound to one official account."""

    token: str
    encoding_aes_key: str = ""
    app_id: str = ""
    mode: MessageMode = MessageMode.PLAIN
    max_age: int = DEFAULT_MAX_AGE  # seconds a signed URL stays valid

    def check(self) -> None:
        """Raise RuntimeError when the settings cannot work, so the app refuses to start."""
        if self.mode not in set(MessageMode):
            raise RuntimeError(
                f"WECHAT_MESSAGE_MODE must be plain, compatible or safe, not {self.mode!r}"
            )
        if self.max_age < 1:
            raise RuntimeError("WECHAT_SIGNATURE_MAX_AGE must be at least 1 second")
        if self.mode == MessageMode.PLAIN:
            return
        name = f"WECHAT_MESSAGE_MODE={self.mode.value}"
        if len(self.encoding_aes_key) != 43:
            raise RuntimeError(
                f"{name} needs WECHAT_ENCODING_AES_KEY, the 43-character EncodingAESKey from "
                f"服务器配置 (got {len(self.encoding_aes_key)} characters)"
            )
        try:
            key = base64.b64decode(self.encoding_aes_key + "=", validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RuntimeError("WECHAT_ENCODING_AES_KEY is not a valid EncodingAESKey") from exc
        if len(key) != 32:
            raise RuntimeError("WECHAT_ENCODING_AES_KEY is not a valid EncodingAESKey")
        if not self.app_id:
            raise RuntimeError(
                f"{name} needs WECHAT_APP_ID: encrypted messages name the account they are for"
            )
        if not self.token:
            raise RuntimeError(f"{name} needs WECHAT_TOKEN, the 服务器配置 Token")

    def verify_url(self, args: Mapping[str, str], now: float | None = None) -> str:
        """URL verification (the GET when 服务器配置 is submitted): the ``echostr`` to echo back."""
        self._signed(args, now)
        echostr = args.get("echostr", "")
        if not _ECHOSTR_RE.match(echostr):
            raise Refused("bad echostr")
        return echostr

    def open(
        self,
        args: Mapping[str, str],
        body: bytes,
        nonces: NonceStore,
        now: float | None = None,
    ) -> Inbound:
        """Verify, decrypt and parse one delivery; Refused (403) or UnreadableMessage (success)."""
        timestamp, nonce = self._signed(args, now)
        encrypted = args.get("encrypt_type", "raw").lower() == "aes"
        if not encrypted and self.mode == MessageMode.SAFE:
            # Safe mode: a plaintext body would be trusted on the URL signature alone, which
            # anyone who has seen one logged request URL can reuse.
            raise Refused("plaintext delivery in safe mode")
        if encrypted:
            if self.mode == MessageMode.PLAIN:
                raise UnreadableMessage("encrypted delivery but WECHAT_MESSAGE_MODE=plain")
            xml = self._decrypt(body, args.get("msg_signature", ""), timestamp, nonce)
        else:
            xml = _utf8(body)
        inbound = replace(parse(xml), encrypted=encrypted, nonce=nonce, timestamp=timestamp)
        # A nonce is good for one delivery. The same delivery again (WeChat's retry, should it
        # reuse the URL) passes and is answered from the dedupe record; anything else is a replay.
        # The encryption is part of what is compared: the reply to an encrypted delivery must
        # never go out in plaintext to someone replaying its URL without encrypt_type.
        delivery = f"{inbound.dedupe_key}|{'aes' if encrypted else 'raw'}"
        if not nonces.claim(timestamp, nonce, delivery, 2 * self.max_age):
            raise Refused("nonce already used for another delivery")
        return inbound

    def seal(self, inbound: Inbound, xml: str, now: float | None = None) -> str:
        """The reply as sent: encrypted when the delivery was, plaintext otherwise."""
        if not xml or not inbound.encrypted:
            return xml
        timestamp = str(int(now if now is not None else time.time()))
        encrypted = PrpCrypto(self._aes_key()).encrypt(xml, self.app_id)
        encrypt = encrypted.decode() if isinstance(encrypted, bytes) else str(encrypted)
        root = Element("xml")
        SubElement(root, "Encrypt").text = encrypt
        SubElement(root, "MsgSignature").text = _sha1(self.token, timestamp, inbound.nonce, encrypt)
        SubElement(root, "TimeStamp").text = timestamp
        SubElement(root, "Nonce").text = inbound.nonce
        return tostring(root, encoding="unicode")

    def _signed(self, args: Mapping[str, str], now: float | None) -> tuple[str, str]:
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        if not self.token:
            raise Refused("WECHAT_TOKEN is not set")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise Refused("bad timestamp")
        if not _NONCE_RE.match(nonce):
            raise Refused("bad nonce")
        if not signature_valid(self.token, args.get("signature", ""), timestamp, nonce):
            raise Refused("bad signature")
        age = (now if now is not None else time.time()) - int(timestamp)
        if abs(age) > self.max_age:
            raise Refused(f"signature expired ({int(age)} s old)")
        return timestamp, nonce

    def _aes_key(self) -> bytes:
        return base64.b64decode(self.encoding_aes_key + "=")

    def _decrypt(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> str:
        if not _HEX40_RE.match(msg_signature or ""):
            raise Refused("missing msg_signature")
        encrypt = _fields(_xml_root(_utf8(body))).get("Encrypt", "")
        if not encrypt or not _same(_sha1(self.token, timestamp, nonce, encrypt), msg_signature):
            raise Refused("bad msg_signature")
        try:
            return str(PrpCrypto(self._aes_key()).decrypt(encrypt, self.app_id))
        except Exception as exc:  # wechatpy raises many types on bad input
            raise UnreadableMessage(f"cannot decrypt: {type(exc).__name__}") from exc


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableMessage("body is not UTF-8") from exc


def _xml_root(xml: str) -> Element:
    if "<!" in xml[:4096] and re.search(r"<!(DOCTYPE|ENTITY)", xml, re.IGNORECASE):
        raise UnreadableMessage("DTDs are not accepted")
    try:
        root = _safe_fromstring(xml, forbid_dtd=True)
    except (DefusedXmlException, SyntaxError, ValueError) as exc:  # ParseError is SyntaxError
        raise UnreadableMessage(f"cannot parse: {type(exc).__name__}") from exc
    if _depth(root) > MAX_XML_DEPTH:
        raise UnreadableMessage("XML nested too deep")
    return root


def _depth(root: Element) -> int:
    # Iterative: a recursive walk is what a 1,000-deep body is made to break.
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_XML_DEPTH:
            stack.extend((child, depth + 1) for child in node)
    return deepest


def _fields(root: Element, limit: int = MAX_FIELD_CHARS) -> dict[str, str]:
    """Top-level child elements' text, first occurrence wins."""
    fields: dict[str, str] = {}
    for child in root:
        if isinstance(child.tag, str) and child.tag not in fields:
            cap = _FIELD_CAPS.get(child.tag, limit)
            fields[child.tag] = (child.text or "").strip()[:cap]
    return fields


def parse(xml: str) -> Inbound:
    """Parse plaintext XML from WeChat into an :class:`Inbound`."""
    root = _xml_root(xml)
    if root.tag != "xml":
        raise UnreadableMessage("root element is not <xml>")
    raw = _fields(root)
    openid = raw.get("FromUserName", "")
    if not _OPENID_RE.match(openid):
        raise UnreadableMessage("no usable FromUserName")
    kind = raw.get("MsgType", "").lower()
    if not kind:
        raise UnreadableMessage("no MsgType")
    common: dict[str, Any] = {
        "openid": openid,
        "account": raw.get("ToUserName", "")[:64],
        "create_time": _int(raw.get("CreateTime")),
        "msg_id": _int(raw.get("MsgId")),
    }
    if raw.get("MsgId") and not common["msg_id"]:
        # Without its real MsgId a retry could not be recognised; not a message from WeChat.
        raise UnreadableMessage("bad MsgId")
    if kind == "text":
        return Inbound(kind="text", text=raw.get("Content", ""), **common)
    if kind == "voice":
        # Recognition is present only when the account enabled speech recognition.
        return Inbound(kind="voice", text=raw.get("Recognition", ""), **common)
    if kind == "location":
        return Inbound(kind="location", extra={"label": raw.get("Label", "")}, **common)
    if kind == "link":
        extra = {"title": raw.get("Title", ""), "url": raw.get("Url", "")}
        return Inbound(kind="link", extra=extra, **common)
    if kind in {"image", "video", "shortvideo"}:
        # MediaId: the file is fetched later, off the reply path (media/get).
        media = {"media_id": raw.get("MediaId", "")[:128]}
        return Inbound(kind="image" if kind == "image" else "video", extra=media, **common)
    if kind == "event":
        return _event(root, raw, common)
    return Inbound(kind="unknown", **common)


def _event(root: Element, raw: dict[str, str], common: dict[str, Any]) -> Inbound:
    event = raw.get("Event", "").lower()[:64]
    key = raw.get("EventKey", "")
    scene = ""
    extra: dict[str, str] = {}
    if event == "subscribe" and key.startswith("qrscene_"):
        # Following through a parametric QR code: EventKey is "qrscene_" + scene. Only this
        # prefix marks a scene; other keys (a product barcode's "scanbarcode|...") are not one.
        scene = key[len("qrscene_") :][:64]
    elif event == "subscribe" and key.startswith(("scanbarcode|", "scanimage|")):
        event = "subscribe_scan_product"  # followed by scanning a product code
    elif event == "scan":
        scene = key[:64]  # already following: EventKey is the scene itself
    if event in {"scancode_waitmsg", "scancode_push"}:
        info = root.find("ScanCodeInfo")
        if info is not None:
            scanned = _fields(info, MAX_EVENT_KEY_CHARS)
            extra = {
                "scan_type": scanned.get("ScanType", ""),
                "scan_result": scanned.get("ScanResult", ""),
            }
    return Inbound(kind="event", event=event, event_key=key, scene=scene, extra=extra, **common)


def _int(value: Any) -> int:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return 0
    # MsgId and CreateTime are 64-bit at most; a 900-digit "number" is not a message id.
    return number if 0 <= number < 2**63 else 0


def _xml_text(value: str) -> str:
    return _XML_INVALID_RE.sub("", value)


def _reply_root(inbound: Inbound, msg_type: str, now: float | None = None) -> Element:
    root = Element("xml")
    SubElement(root, "ToUserName").text = _xml_text(inbound.openid)
    SubElement(root, "FromUserName").text = _xml_text(inbound.account)
    SubElement(root, "CreateTime").text = str(int(now if now is not None else time.time()))
    SubElement(root, "MsgType").text = msg_type
    return root


def text_reply(inbound: Inbound, text: str) -> str:
    """Render a passive text reply to ``inbound`` (every value escaped, whatever it holds)."""
    root = _reply_root(inbound, "text")
    SubElement(root, "Content").text = _xml_text(text)
    return tostring(root, encoding="unicode")


def transfer_reply(inbound: Inbound, kf_account: str = "") -> str:
    """Render ``transfer_customer_service``, naming an agent account when one is configured."""
    root = _reply_root(inbound, "transfer_customer_service")
    if kf_account:
        info = SubElement(root, "TransInfo")
        SubElement(info, "KfAccount").text = _xml_text(kf_account)
    return tostring(root, encoding="unicode")


# ---------------------------------------------------------------------------------------------
# API clients (never used on the passive-reply path)


class TokenBackend:
    """Shared storage with expiry: implemented over Redis or the ``settings`` table."""

    def get(self, key: str) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def set(self, key: str, value: str, ttl: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def delete(self, key: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def lock(self, key: str) -> AbstractContextManager[None]:
        """Hold the refresh lock for ``key`` so only one process fetches a token at a time."""
        return _no_lock()


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


class RedisTokenBackend(TokenBackend):
    """Token storage in Redis; the refresh lock is a Redis lock."""

    def __init__(self, redis_client: Any, prefix: str = "kefu:wechat:") -> None:
        self.redis = redis_client
        self.prefix = prefix

    def get(self, key: str) -> str | None:
        """The stored value, or None when missing or expired."""
        value = self.redis.get(self.prefix + key)
        return value.decode() if isinstance(value, bytes) else value

    def set(self, key: str, value: str, ttl: int) -> None:
        """Store ``value`` for ``ttl`` seconds."""
        self.redis.set(self.prefix + key, value, ex=ttl)

    def delete(self, key: str) -> None:
        """Forget ``key``."""
        self.redis.delete(self.prefix + key)

    @contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the refresh lock (released after 10 s even if its holder dies)."""
        with self.redis.lock(self.prefix + "lock:" + key, timeout=10, blocking_timeout=10):
            yield


# A rejected token is refreshed and the call retried once; beyond that the error is real.
TOKEN_RETRIES = 1


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
        self.app_id = app_id
        self.app_secret = app_secret
        self.backend = backend
        self.timeout = timeout
        self.base = (api_base_url or "https://api.weixin.qq.com").rstrip("/")
        self.token_key = f"{app_id}_access_token"

    def create_menu(self, menu: dict[str, Any]) -> None:
        """Replace the account's custom menu."""
        self.call("/cgi-bin/menu/create", menu)

    def send_text(self, openid: str, text: str) -> None:
        """Send a customer-service text message (allowed within 48 h of the user's last message)."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        self.call("/cgi-bin/message/custom/send", body)

    def download_media(self, media_id: str) -> bytes:
        """Fetch a temporary media file (a photo the user sent) by its MediaId."""
        for attempt in range(TOKEN_RETRIES + 1):
            token = self.access_token()
            try:
                response = requests.get(
                    self.base + "/cgi-bin/media/get",
                    params={"access_token": token, "media_id": media_id},
                    timeout=self.timeout,
                )
                response.raise_for_status()
            except requests.RequestException as exc:
                raise WeChatApiError(f"media/get: {type(exc).__name__}: {exc}") from exc
            if not response.headers.get("Content-Type", "").startswith(
                ("application/json", "text/plain")
            ):
                return response.content
            try:
                result = response.json()
            except ValueError:
                return response.content
            code = int(result.get("errcode") or 0)
            error = ERRORS.get(code, WeChatApiError)
            if error is TokenRejected and attempt < TOKEN_RETRIES:
                self._forget(token)
                continue
            raise error(f"media/get: {code} {result.get('errmsg', '')}", code)
        raise AssertionError("unreachable")  # pragma: no cover

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to an API path with the access token; raises a WeChatApiError subclass."""
        for attempt in range(TOKEN_RETRIES + 1):
            token = self.access_token()
            try:
                return self._post(path, body, {"access_token": token})
            except TokenRejected:
                if attempt == TOKEN_RETRIES:
                    raise
                self._forget(token)
        raise AssertionError("unreachable")  # pragma: no cover

    def access_token(self) -> str:
        """The shared access token, fetched (by one process at a time) when there is none."""
        try:
            return self._access_token()
        except redis.RedisError as exc:  # the shared store is away: try again later
            raise WeChatApiError(f"token store: {type(exc).__name__}: {exc}") from exc

    def _access_token(self) -> str:
        token = self.backend.get(self.token_key)
        if token:
            return token
        with self.backend.lock(self.token_key):
            # Another process may have fetched it while this one waited for the lock.
            token = self.backend.get(self.token_key)
            if token:
                return token
            result = self._post(
                "/cgi-bin/stable_token",
                {
                    "grant_type": "client_credential",
                    "appid": self.app_id,
                    "secret": self.app_secret,
                    "force_refresh": False,
                },
            )
            token = str(result.get("access_token") or "")
            if not token:
                raise WeChatApiError("stable_token: no access_token in the answer")
            # Refresh a minute early: WeChat rejects a token at its exact expiry.
            ttl = max(1, int(result.get("expires_in") or 7200) - 60)
            self.backend.set(self.token_key, token, ttl)
            return token

    def _forget(self, token: str) -> None:
        try:
            with self.backend.lock(self.token_key):
                if self.backend.get(self.token_key) == token:
                    self.backend.delete(self.token_key)
        except redis.RedisError as exc:
            raise WeChatApiError(f"token store: {type(exc).__name__}: {exc}") from exc

    def _post(
        self, path: str, body: dict[str, Any], params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            response = requests.post(
                self.base + path,
                params=params,
                data=_json(body),
                headers={"Content-Type": "application/json; charset=utf-8"},
                timeout=self.timeout,
            )
            response.raise_for_status()
            result = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatApiError(f"{path}: {type(exc).__name__}: {exc}") from exc
        if not isinstance(result, dict):
            raise WeChatApiError(f"{path}: unexpected answer")
        code = int(result.get("errcode") or 0)
        if code:
            error = ERRORS.get(code, WeChatApiError)
            raise error(f"{path}: {code} {result.get('errmsg', '')}", code)
        return result


def _json(body: dict[str, Any]) -> bytes:
    # WeChat reads \\uXXXX escapes literally in some APIs: send Chinese as UTF-8.
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


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
    "ERRORS",
    "ApiClient",
    "ApiUnauthorized",
    "Endpoint",
    "Inbound",
    "MessageMode",
    "NonceStore",
    "OAuth",
    "QuotaExceeded",
    "RedisNonceStore",
    "RedisTokenBackend",
    "Refused",
    "ReplyWindowClosed",
    "TokenBackend",
    "TokenRejected",
    "TooManyMessages",
    "UnreadableMessage",
    "WeChatApiError",
    "parse",
    "signature_valid",
    "text_reply",
    "transfer_reply",
]
