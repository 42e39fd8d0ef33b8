"""A real HTTP server on 127.0.0.1 that answers like the Telegram Bot API.

Bots talk to it with `Bot(token, base_url=server.base_url)`: requests arrive at
`/bot<TOKEN>/<method>`, form-encoded or multipart (with files), exactly as
python-telegram-bot sends them to Telegram. It implements getMe, sendMessage and
sendPhoto, checks what Telegram checks (token, chat, HTML entities, length limits) and
answers with Telegram's error codes and descriptions, so the client's error handling
meets the same answers it will meet in production.

Every accepted message is recorded (`server.messages`), every request and its outcome
too (`server.requests`). Faults can be scripted for the next requests: a 429 with
`retry_after`, a 5xx, or a hang.

The hang fault and duplicates: a client that times out cannot know whether Telegram
delivered the message; real Telegram may have delivered it, and a retry then duplicates
it. No client can remove that ambiguity. This fake makes the hang deterministic: it reads
the request, hangs BEFORE processing it and then drops the connection without answering
and without recording, i.e. the message was NOT delivered. A test of "timeout then
success -> one delivery" therefore checks that the client retries the message and that it
does not re-send messages that were confirmed before the timeout.
"""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

MESSAGE_LIMIT = 4096
CAPTION_LIMIT = 1024
SEND_METHODS = frozenset({"sendmessage", "sendphoto"})
DEFAULT_TOKEN = "123456789:AAFakeTokenForTestsOnly_abcdefghijk"
DEFAULT_CHAT_ID = "424242"

# Telegram's HTML parse mode: these tags and no others (attributes are not checked).
ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    }
)
# The only named entities Telegram decodes; numeric ones (&#39; &#x27;) are all fine.
ALLOWED_NAMED_ENTITIES = frozenset({"lt", "gt", "amp", "quot"})

_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)$")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"


@dataclass(frozen=True)
class RecordedMessage:
    """A message the fake accepted, as Telegram would have delivered it."""

    message_id: int
    method: str  # "sendMessage" or "sendPhoto"
    chat_id: str
    text: str | None  # the text or caption exactly as sent (HTML source in HTML mode)
    parse_mode: str | None
    photo_size: int | None  # bytes of the uploaded photo
    plain_text: str | None  # what the reader sees: tags removed, entities decoded


@dataclass(frozen=True)
class Fault:
    """A scripted fault for the next request to one of `methods` (lowercase names)."""

    # "pass" lets one request through untouched, to aim the faults queued after it.
    kind: Literal["retry_after", "status", "hang", "pass"]
    status: int = 500
    retry_after: int = 1
    seconds: float = 0.0
    methods: frozenset[str] = SEND_METHODS


class EntityError(ValueError):
    """The text is not well-formed Telegram HTML (Telegram: "can't parse entities")."""


class _TelegramHtml(HTMLParser):
    """Checks Telegram's HTML rules and collects the plain text a reader would see."""

    def __init__(self) -> None:
        # convert_charrefs=False: every entity is reported, so unsupported ones are seen.
        super().__init__(convert_charrefs=False)
        self.open_tags: list[str] = []
        self.plain: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ALLOWED_TAGS:
            raise EntityError(f'Unsupported start tag "{tag}"')
        self.open_tags.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        raise EntityError(f'Unsupported start tag "{tag}/"')

    def handle_endtag(self, tag: str) -> None:
        if not self.open_tags or self.open_tags[-1] != tag:
            raise EntityError(f'Unmatched end tag "{tag}"')
        self.open_tags.pop()

    def handle_data(self, data: str) -> None:
        # A bare "<", ">" or "&" reaches here as data: Telegram requires them escaped.
        for character in "<>&":
            if character in data:
                raise EntityError(f'Unescaped "{character}" in the text')
        self.plain.append(data)

    def handle_entityref(self, name: str) -> None:
        if name not in ALLOWED_NAMED_ENTITIES:
            raise EntityError(f'Unsupported entity "&{name};"')
        self.plain.append(html.unescape(f"&{name};"))

    def handle_charref(self, name: str) -> None:
        self.plain.append(html.unescape(f"&#{name};"))

    def handle_comment(self, data: str) -> None:
        raise EntityError("Comments are not supported")

    def handle_decl(self, decl: str) -> None:
        raise EntityError("Declarations are not supported")

    def handle_pi(self, data: str) -> None:
        raise EntityError("Processing instructions are not supported")

    def unknown_decl(self, data: str) -> None:
        raise EntityError("Declarations are not supported")


def parse_telegram_html(text: str) -> str:
    """The plain text of Telegram HTML; EntityError if Telegram would refuse it."""
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    if parser.open_tags:
        raise EntityError(
            f'Can\'t find end tag corresponding to start tag "{parser.open_tags[-1]}"'
        )
    return "".join(parser.plain)


def telegram_length(text: str) -> int:
    """Telegram counts lengths in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, bytes]]:
    """Fields and files of a multipart/form-data body (the stdlib `cgi` module is gone)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + match.group(1).encode()
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, content = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        content = content.removesuffix(b"\r\n")
        headers = head.decode("utf-8", "replace")
        name = re.search(r'\bname="([^"]*)"', headers)
        if name is None:
            continue
        if re.search(r'\bfilename="', headers):
            files[name.group(1)] = content
        else:
            fields[name.group(1)] = content.decode("utf-8")
    return fields, files


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeTelegramServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so a dropped (hung) connection is unambiguous.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # The default writes the request line, token included, to stderr.
        return

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fields = {key: values[0] for key, values in urllib.parse.parse_qs(url.query).items()}
        files: dict[str, bytes] = {}
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            more_fields, files = _parse_multipart(body, content_type)
            fields.update(more_fields)
        elif body:
            parsed = urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)
            fields.update({key: values[0] for key, values in parsed.items()})
        match = _PATH.match(url.path)
        if match is None:
            self._answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        outcome = self.server.fake._process(match["token"], match["method"], fields, files)
        if outcome is None:  # a hang: drop the connection without an answer
            self.close_connection = True
            return
        self._answer(*outcome)

    def _answer(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _error(status: int, description: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
    payload: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        payload["parameters"] = parameters
    return status, payload


class FakeTelegramServer:
    """The fake Bot API server; use it as a context manager (or call start/stop).

    `token` is the one valid token; `chats` the chat ids that exist (as strings).
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        chats: Collection[str] = (DEFAULT_CHAT_ID,),
        bot_username: str = "churn_report_test_bot",
    ) -> None:
        self.token = token
        self.chats = {str(chat) for chat in chats}
        self.bot_username = bot_username
        self._lock = threading.Lock()
        self._messages: list[RecordedMessage] = []
        self._requests: list[tuple[str, int | str]] = []
        self._faults: deque[Fault] = deque()
        self._message_ids = itertools.count(1)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> FakeTelegramServer:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(
            # A short poll interval: stop() waits up to one interval, 0.5 s by default.
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-telegram",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; hung requests are woken up and dropped."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeTelegramServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("the fake Telegram server is not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        """The value for `Bot(base_url=...)`: the token is appended to it."""
        return f"http://127.0.0.1:{self.port}/bot"

    # -- what happened

    @property
    def messages(self) -> list[RecordedMessage]:
        """Accepted messages, in order (a copy)."""
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[tuple[str, int | str]]:
        """Every request as (method, HTTP status or "dropped"), in order (a copy)."""
        with self._lock:
            return list(self._requests)

    # -- scripted faults

    def add_faults(self, faults: Iterable[Fault]) -> None:
        """Queue faults; each applies once, to the next request of one of its methods."""
        with self._lock:
            self._faults.extend(faults)

    def fail_with_retry_after(self, seconds: int, times: int = 1) -> None:
        """The next send request(s) get 429 Too Many Requests with `retry_after`."""
        self.add_faults([Fault("retry_after", status=429, retry_after=seconds)] * times)

    def fail_with_status(self, status: int = 500, times: int = 1) -> None:
        """The next send request(s) get a server error (500, 502, ...)."""
        self.add_faults([Fault("status", status=status)] * times)

    def let_through(self, times: int = 1) -> None:
        """The next send request(s) are served normally (aims the faults queued after)."""
        self.add_faults([Fault("pass")] * times)

    def hang(self, seconds: float, times: int = 1) -> None:
        """The next send request(s) hang `seconds`, then the connection is dropped."""
        self.add_faults([Fault("hang", seconds=seconds)] * times)

    # -- the API

    def _next_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if method in fault.methods:
                    self._faults.remove(fault)
                    return fault
        return None

    def _log(self, method: str, outcome: int | str) -> None:
        with self._lock:
            self._requests.append((method, outcome))

    def _process(
        self, token: str, method: str, fields: dict[str, str], files: dict[str, bytes]
    ) -> tuple[int, dict[str, Any]] | None:
        """Answer one API call: (status, JSON payload), or None to drop the connection."""
        fault = self._next_fault(method.lower())
        if fault is not None and fault.kind == "pass":
            fault = None
        if fault is not None and fault.kind == "hang":
            self._stopping.wait(fault.seconds)
            self._log(method, "dropped")
            return None
        if fault is not None and fault.kind == "retry_after":
            outcome = _error(
                429,
                f"Too Many Requests: retry after {fault.retry_after}",
                retry_after=fault.retry_after,
            )
        elif fault is not None:
            outcome = _error(fault.status, "Internal Server Error")
        else:
            outcome = self._api_call(token, method, fields, files)
        self._log(method, outcome[0])
        return outcome

    def _api_call(
        self, token: str, method: str, fields: dict[str, str], files: dict[str, bytes]
    ) -> tuple[int, dict[str, Any]]:
        if token != self.token:
            return _error(401, "Unauthorized")
        name = method.lower()
        if name == "getme":
            return 200, {"ok": True, "result": self._bot_user()}
        if name not in SEND_METHODS:
            return _error(404, "Not Found")

        chat_id = fields.get("chat_id", "")
        if chat_id not in self.chats:
            return _error(400, "Bad Request: chat not found")
        parse_mode = fields.get("parse_mode") or None
        text_field, limit = (
            ("text", MESSAGE_LIMIT) if name == "sendmessage" else ("caption", CAPTION_LIMIT)
        )
        text = fields.get(text_field)

        photo_size: int | None = None
        if name == "sendphoto":
            photo_reference = fields.get("photo", "")
            # PTB either names the file part "photo" or sends "attach://<part name>".
            part = photo_reference.removeprefix("attach://") if photo_reference else "photo"
            photo = files.get(part) or files.get("photo")
            if photo is None:
                return _error(400, "Bad Request: there is no photo in the request")
            if not photo.startswith((_PNG_SIGNATURE, _JPEG_SIGNATURE)):
                return _error(400, "Bad Request: IMAGE_PROCESS_FAILED")
            photo_size = len(photo)

        plain: str | None = text
        if text is not None and parse_mode is not None:
            if parse_mode.upper() != "HTML":
                return _error(400, f"Bad Request: unsupported parse_mode {parse_mode!r} in fake")
            try:
                plain = parse_telegram_html(text)
            except EntityError as error:
                return _error(400, f"Bad Request: can't parse entities: {error}")
        if name == "sendmessage" and not (plain or "").strip():
            return _error(400, "Bad Request: message text is empty")
        # Telegram's limits apply to the text after entity parsing, in UTF-16 units.
        if plain is not None and telegram_length(plain) > limit:
            if name == "sendmessage":
                return _error(400, "Bad Request: message is too long")
            return _error(400, "Bad Request: message caption is too long")

        with self._lock:
            message_id = next(self._message_ids)
            self._messages.append(
                RecordedMessage(
                    message_id=message_id,
                    method="sendMessage" if name == "sendmessage" else "sendPhoto",
                    chat_id=chat_id,
                    text=text,
                    parse_mode=parse_mode,
                    photo_size=photo_size,
                    plain_text=plain,
                )
            )
        result: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": self._bot_user(),
        }
        if name == "sendmessage":
            result["text"] = plain
        else:
            result["photo"] = [
                {
                    "file_id": f"photo-{message_id}",
                    "file_unique_id": f"unique-{message_id}",
                    "width": 800,
                    "height": 900,
                    "file_size": photo_size,
                }
            ]
            if plain is not None:
                result["caption"] = plain
        return 200, {"ok": True, "result": result}

    def _bot_user(self) -> dict[str, Any]:
        bot_id = int(self.token.partition(":")[0]) if self.token[:1].isdigit() else 1
        return {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Churn report (fake)",
            "username": self.bot_username,
        }

    @staticmethod
    def _chat(chat_id: str) -> dict[str, Any]:
        try:
            numeric = int(chat_id)
        except ValueError:  # "@channelname"
            return {"id": -1000000000001, "type": "channel", "username": chat_id.lstrip("@")}
        return {"id": numeric, "type": "private" if numeric > 0 else "supergroup"}
