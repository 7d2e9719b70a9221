"""Reading a chat export into plain messages: a Slack workspace export or a Mattermost bulk export.

What the team wrote in the incident channel is the record of how they
communicated; ``import-chat`` scores it. This module only reads: one channel
of an export becomes ``ChatMessage`` rows (when, who by display name, the
text as people read it, the thread, edited, from a bot), in time order.
Deciding what a message means is ``recognise``'s; keeping the run's window
and storing marks is ``imported``'s.

- **Slack** (a folder or its zip): ``users.json`` (ids to names),
  ``channels.json`` (and ``groups.json`` for private channels), and one file
  per day ``CHANNEL/YYYY-MM-DD.json`` holding that day's messages. Thread
  replies are messages of their own with ``thread_ts``; an edited message
  keeps its current text in ``text`` and says ``edited``. Mentions
  (``<@U123>``) become ``@name``.
- **Mattermost** (a JSONL file, or the zip the export command writes):
  ``version``, ``user``, ``channel`` and ``post`` lines; a post's
  ``replies`` are its thread; ``edit_at`` marks an edit; times are
  milliseconds.

Join/leave and other system messages are dropped here (and counted); bot
messages are kept with ``bot=True`` so the caller can count what it skips. A
user the export does not list is ``unknown user ID``, not an error. Anything
malformed is a ``UsageError`` naming the file and the line or field.
"""

from __future__ import annotations

import html
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from chaosrunner.errors import UsageError

FORMATS = ("slack", "mattermost")
MAX_FILE_BYTES = 256 * 1024 * 1024
"""A member (a channel's day, the whole JSONL) larger than this is refused: a zip can claim anything."""

SLACK_KEPT_SUBTYPES = frozenset({"", "thread_broadcast", "me_message", "file_share"})
"""Slack subtypes that are a person writing; every other subtype (channel_join, channel_topic, ...) is the
system's."""


@dataclass(frozen=True)
class ChatMessage:
    at: datetime
    author: str  # the display name, or "unknown user U123"
    text: str  # as people read it: mentions as @name, entities unescaped
    thread: str | None = None  # the thread's root id, for the root and its replies alike
    reply: bool = False  # a reply inside a thread
    edited: bool = False
    bot: bool = False
    mentions: tuple[str, ...] = ()  # the display names @mentioned, in order


@dataclass
class ChatExport:
    format: str  # slack | mattermost
    channel: str
    source: str  # the export's path, for messages
    messages: list[ChatMessage] = field(default_factory=list)
    system_skipped: int = 0  # joins, leaves, topic changes: not anyone's words


def detect_format(path: Path) -> str:
    """slack for a folder or zip with users.json; mattermost for a JSONL file or a zip holding one."""
    if path.is_dir():
        return "slack"
    if not path.is_file():
        raise UsageError(f"{path}: no such export (a Slack export folder or zip, or a Mattermost JSONL)")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if any(PurePosixPath(name).name == "users.json" for name in names):
            return "slack"
        if any(name.endswith(".jsonl") for name in names):
            return "mattermost"
        raise UsageError(f"{path}: a zip with neither users.json (Slack) nor a .jsonl file (Mattermost)")
    return "mattermost"


def read_export(
    path: Path,
    channel: str,
    export_format: str | None = None,
    *,
    days: tuple[date, date] | None = None,
) -> ChatExport:
    """One channel's messages, oldest first. ``days`` (Slack) reads only the daily files in that range."""
    chosen = export_format or detect_format(path)
    if chosen not in FORMATS:
        raise UsageError(f"--format {chosen!r}: expected one of: {', '.join(FORMATS)}")
    name = channel.lstrip("#")
    if not name:
        raise UsageError("--channel: give the channel's name, e.g. --channel incident-checkout")
    if chosen == "slack":
        export = _read_slack(_Archive.open(path), name, days)
    else:
        export = _read_mattermost(path, name)
    export.messages.sort(key=lambda message: message.at)
    return export


# -- reading files from a folder or a zip --------------------------------------------------------


class _Archive:
    """A Slack export's files by their path inside it, from a folder or a zip (flat or in one folder)."""

    def __init__(self, root: Path, archive: zipfile.ZipFile | None, prefix: str) -> None:
        self.root = root
        self.archive = archive
        self.prefix = prefix

    @classmethod
    def open(cls, path: Path) -> _Archive:
        if path.is_dir():
            return cls(path, None, "")
        if not zipfile.is_zipfile(path):
            raise UsageError(f"{path}: a Slack export is a folder or a zip, not this file")
        archive = zipfile.ZipFile(path)
        users = [name for name in archive.namelist() if PurePosixPath(name).name == "users.json"]
        prefix = min(users, key=len)[: -len("users.json")] if users else ""
        return cls(path, archive, prefix)

    def where(self, name: str) -> str:
        return f"{self.root}/{self.prefix}{name}" if self.archive else str(self.root / name)

    def exists(self, name: str) -> bool:
        if self.archive is None:
            return (self.root / name).is_file()
        try:
            self.archive.getinfo(self.prefix + name)
        except KeyError:
            return False
        return True

    def read(self, name: str) -> bytes:
        if self.archive is None:
            target = self.root / name
            if target.stat().st_size > MAX_FILE_BYTES:
                raise UsageError(f"{self.where(name)}: larger than {MAX_FILE_BYTES // 2**20} MiB")
            return target.read_bytes()
        info = self.archive.getinfo(self.prefix + name)
        if info.file_size > MAX_FILE_BYTES:
            raise UsageError(f"{self.where(name)}: larger than {MAX_FILE_BYTES // 2**20} MiB")
        with self.archive.open(info) as handle:
            return handle.read(MAX_FILE_BYTES + 1)[:MAX_FILE_BYTES]

    def days(self, folder: str) -> list[str]:
        """The daily files of one channel's folder, by name (YYYY-MM-DD.json)."""
        if self.archive is None:
            base = self.root / folder
            return sorted(item.name for item in base.glob("*.json")) if base.is_dir() else []
        inside = f"{self.prefix}{folder}/"
        return sorted(
            name[len(inside) :]
            for name in self.archive.namelist()
            if name.startswith(inside) and name.endswith(".json") and "/" not in name[len(inside) :]
        )


def _json(data: bytes, where: str, *, one_line: bool = False) -> Any:
    """Parsed JSON; a mistake names ``where:line:column`` (``one_line``: ``where`` already has the line)."""
    try:
        return json.loads(data)
    except UnicodeDecodeError as error:
        raise UsageError(f"{where}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        position = f"{error.colno}" if one_line else f"{error.lineno}:{error.colno}"
        raise UsageError(f"{where}:{position}: not valid JSON: {error.msg}") from None


def _object(value: Any) -> dict[str, Any]:
    """An optional nested object (a user's profile, a post's props): empty when absent or not an object."""
    return value if isinstance(value, dict) else {}


# -- Slack ------------------------------------------------------------------------------------------


_DAY_FILE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})\.json$")
_SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")


def _slack_users(archive: _Archive) -> dict[str, str]:
    if not archive.exists("users.json"):
        raise UsageError(
            f"{archive.where('users.json')}: missing - a Slack workspace export has users.json beside "
            "channels.json and a folder per channel"
        )
    where = archive.where("users.json")
    users = _json(archive.read("users.json"), where)
    if not isinstance(users, list):
        raise UsageError(f"{where}: expected a list of users, not {type(users).__name__}")
    names = {}
    for index, user in enumerate(users):
        if not isinstance(user, dict) or not isinstance(user.get("id"), str):
            raise UsageError(f'{where}: user {index}: expected an object with an "id"')
        profile = _object(user.get("profile"))
        candidates = (
            profile.get("display_name"),
            profile.get("real_name"),
            user.get("real_name"),
            user.get("name"),
        )
        names[user["id"]] = next(
            (str(name) for name in candidates if isinstance(name, str) and name.strip()), user["id"]
        )
    return names


def _slack_channel(archive: _Archive, channel: str) -> str:
    """The folder of ``channel``: its name, looked up in channels.json (and groups.json if there)."""
    known: list[str] = []
    for listing in ("channels.json", "groups.json"):
        if not archive.exists(listing):
            if listing == "channels.json":
                raise UsageError(f"{archive.where(listing)}: missing - it lists the export's channels")
            continue
        where = archive.where(listing)
        channels = _json(archive.read(listing), where)
        if not isinstance(channels, list):
            raise UsageError(f"{where}: expected a list of channels, not {type(channels).__name__}")
        for index, item in enumerate(channels):
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise UsageError(f'{where}: channel {index}: expected an object with a "name"')
            known.append(item["name"])
            if item["name"] == channel or item.get("id") == channel:
                return str(item["name"])
    raise UsageError(
        f"{archive.where('channels.json')}: no channel {channel!r} in this export"
        + (f"; it has: {', '.join(sorted(known)[:20])}" if known else "")
    )


def _slack_text(text: str, users: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """Slack's markup as people read it: <@U1> -> @name, <#C1|name> -> #name, <url|label> -> label."""
    mentions: list[str] = []

    def link(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            name = users.get(target[1:]) or label or f"unknown user {target[1:]}"
            mentions.append(name)
            return f"@{name}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            return f"@{label or target[1:].split('^')[0]}"
        return label or target

    return html.unescape(_SLACK_LINK.sub(link, text)), tuple(mentions)


def _slack_time(value: Any, where: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError):
        raise UsageError(
            f'{where}: field "ts": expected Slack\'s "1700000000.000100", not {value!r}'
        ) from None


def _read_slack(archive: _Archive, channel: str, days: tuple[date, date] | None) -> ChatExport:
    users = _slack_users(archive)
    folder = _slack_channel(archive, channel)
    export = ChatExport("slack", folder, str(archive.root))
    for day_file in archive.days(folder):
        day = _DAY_FILE.match(day_file)
        if day is None:
            continue
        if days is not None and not days[0] <= date(*(int(part) for part in day.groups())) <= days[1]:
            continue
        where = archive.where(f"{folder}/{day_file}")
        messages = _json(archive.read(f"{folder}/{day_file}"), where)
        if not isinstance(messages, list):
            raise UsageError(f"{where}: expected a list of messages, not {type(messages).__name__}")
        for index, message in enumerate(messages):
            here = f"{where}: message {index}"
            if not isinstance(message, dict):
                raise UsageError(f"{here}: expected an object, not {type(message).__name__}")
            if message.get("type", "message") != "message":
                continue
            subtype = str(message.get("subtype") or "")
            bot = subtype == "bot_message" or bool(message.get("bot_id"))
            if not bot and subtype not in SLACK_KEPT_SUBTYPES:
                export.system_skipped += 1
                continue
            text = message.get("text", "")
            if not isinstance(text, str):
                raise UsageError(f'{here}: field "text": expected a string')
            user = message.get("user")
            author = (
                users.get(user, f"unknown user {user}")
                if isinstance(user, str)
                else str(message.get("username") or "unknown user")
            )
            shown, mentions = _slack_text(text, users)
            ts, thread_ts = message.get("ts"), message.get("thread_ts")
            export.messages.append(
                ChatMessage(
                    at=_slack_time(ts, here),
                    author=author,
                    text=shown,
                    thread=str(thread_ts) if thread_ts else None,
                    reply=bool(thread_ts) and thread_ts != ts,
                    edited=isinstance(message.get("edited"), dict),
                    bot=bot,
                    mentions=mentions,
                )
            )
    return export


# -- Mattermost -------------------------------------------------------------------------------------


def _mattermost_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = [name for name in archive.namelist() if name.endswith(".jsonl")]
            if not names:
                raise UsageError(f"{path}: no .jsonl file in this zip (a Mattermost bulk export has one)")
            info = archive.getinfo(names[0])
            if info.file_size > MAX_FILE_BYTES:
                raise UsageError(f"{path}/{names[0]}: larger than {MAX_FILE_BYTES // 2**20} MiB")
            with archive.open(info) as handle:
                yield from enumerate(handle, start=1)
        return
    if path.stat().st_size > MAX_FILE_BYTES:
        raise UsageError(f"{path}: larger than {MAX_FILE_BYTES // 2**20} MiB")
    with path.open("rb") as handle:
        yield from enumerate(handle, start=1)


def _mattermost_time(value: Any, where: str) -> datetime:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise UsageError(f'{where}: field "create_at": expected milliseconds since 1970, not {value!r}')
    return datetime.fromtimestamp(value / 1000, UTC)


_MATTERMOST_MENTION = re.compile(r"@([a-z0-9][a-z0-9._-]*)", re.I)


def _mattermost_message(
    post: dict[str, Any], where: str, users: set[str], thread: str | None, reply: bool
) -> ChatMessage | None:
    """One post or reply; None for a system post (join, leave, header change)."""
    kind = str(post.get("type") or "")
    if kind.startswith("system_"):
        return None
    text = post.get("message", "")
    if not isinstance(text, str):
        raise UsageError(f'{where}: field "message": expected a string')
    user = post.get("user")
    if not isinstance(user, str) or not user:
        raise UsageError(f'{where}: field "user": expected the author\'s username')
    props = _object(post.get("props"))
    mentions = tuple(
        name.rstrip(".") for name in _MATTERMOST_MENTION.findall(text) if name.rstrip(".") in users
    )
    return ChatMessage(
        at=_mattermost_time(post.get("create_at"), where),
        author=user if user in users else f"unknown user {user}",
        text=text,
        thread=thread,
        reply=reply,
        edited=bool(post.get("edit_at")),
        bot=str(props.get("from_bot", "")).lower() == "true" or bool(props.get("from_webhook")),
        mentions=mentions,
    )


def _read_mattermost(path: Path, channel: str) -> ChatExport:
    export = ChatExport("mattermost", channel, str(path))
    users: set[str] = set()
    channels: set[str] = set()
    posts: list[tuple[str, dict[str, Any]]] = []
    for number, raw in _mattermost_lines(path):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        line = _json(raw, where, one_line=True)
        if not isinstance(line, dict) or not isinstance(line.get("type"), str):
            raise UsageError(f'{where}: expected an object with a "type" (version, user, channel, post, ...)')
        kind = line["type"]
        if number == 1 and kind != "version":
            raise UsageError(f'{where}: a Mattermost bulk export starts with a "version" line, not {kind!r}')
        body = line.get(kind)
        if kind in ("user", "channel", "post") and not isinstance(body, dict):
            raise UsageError(f"{where}: field {kind!r}: expected an object")
        if kind == "user" and isinstance(body, dict):
            if not isinstance(body.get("username"), str):
                raise UsageError(f'{where}: field "user.username": expected a string')
            users.add(body["username"])
        elif kind == "channel" and isinstance(body, dict):
            channels.update(str(body[key]) for key in ("name", "display_name") if body.get(key))
            if body.get("display_name") == channel and body.get("name"):
                channels.add(channel)
                channel = export.channel = str(body["name"])
        elif kind == "post" and isinstance(body, dict):
            posts.append((where, body))
    if channel not in channels and not any(post.get("channel") == channel for _, post in posts):
        raise UsageError(
            f"{path}: no channel {channel!r} in this export"
            + (f"; it has: {', '.join(sorted(channels)[:20])}" if channels else "")
        )
    for where, post in posts:
        if post.get("channel") != channel:
            continue
        replies = post.get("replies") or []
        if not isinstance(replies, list):
            raise UsageError(f'{where}: field "post.replies": expected a list')
        thread = f"{channel}:{post.get('create_at')}" if replies else None
        root = _mattermost_message(post, f"{where}: post", users, thread, False)
        if root is None:
            export.system_skipped += 1
        else:
            export.messages.append(root)
        for index, item in enumerate(replies):
            if not isinstance(item, dict):
                raise UsageError(f"{where}: post.replies[{index}]: expected an object")
            reply = _mattermost_message(item, f"{where}: post.replies[{index}]", users, thread, True)
            if reply is None:
                export.system_skipped += 1
            else:
                export.messages.append(reply)
    return export


def day_range(start: datetime, end: datetime) -> tuple[date, date]:
    """The daily files that can hold messages between ``start`` and ``end`` (a day either side for zones)."""
    return (start - timedelta(days=1)).date(), (end + timedelta(days=1)).date()
