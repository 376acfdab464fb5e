"""Runs the scripted intake conversations (tests/conversations/*.yaml) against any chat backend.

The checker only sees an *observed* dict per turn, so the same YAML runs against the library (tests/test_intake.py)
and against the HTTP API (the lead's tests): a backend is a `send(text) -> observed` function where observed has

    reply: str, status: str, slots: dict, urgent: bool, submit: bool, ticket_no: str | None, asking: str | None

(`asking` may be missing: expectations on it are then skipped). See README.md for the expectation vocabulary.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterable

import yaml

HERE = Path(__file__).resolve().parent
# The library runs use this clock: a Wednesday morning in Beijing time.
DEFAULT_NOW = datetime.fromisoformat("2026-11-25T10:30:00+08:00")
_RELATIVE = re.compile(
    r"^(?:D(?P<offset>[+-][0-9]+)?|W(?P<weeks>[+-]?[0-9]+)\.(?P<weekday>[1-7]))(?: (?P<hh>[0-9]{2}):(?P<mm>[0-9]{2}))?$"
)
_MISSING = object()


def load_conversations(directory: Path = HERE) -> list[dict]:
    """Every conversation of every *.yaml file under `directory`, each tagged with its file name."""
    conversations = []
    for path in sorted(directory.glob("*.yaml")):
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
        for conversation in data["conversations"]:
            conversations.append({**conversation, "file": path.name})
    names = [c["name"] for c in conversations]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"conversation names must be unique: {sorted(duplicates)}")
    return conversations


def _get(slots: dict, dotted: str):
    node = slots
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _resolve_relative(spec: str, now: datetime) -> str:
    """'D-1 20:00' → '2026-11-24T20:00' (the local date/time prefix of an ISO time); 'D-3' → '2026-11-22';
    'W-1.3' → Wednesday of last week (weeks start on Monday)."""
    m = _RELATIVE.match(spec.strip())
    if not m:
        raise ValueError(f"bad relative time {spec!r}; use 'D', 'D-1', 'D-1 20:00', 'W-1.3 08:00'")
    if m.group("weekday"):
        monday = now.date() - timedelta(days=now.weekday())
        day = (monday + timedelta(weeks=int(m.group("weeks")), days=int(m.group("weekday")) - 1)).isoformat()
    else:
        day = (now + timedelta(days=int(m.group("offset") or 0))).date().isoformat()
    return f"{day}T{m.group('hh')}:{m.group('mm')}" if m.group("hh") else day


def check_turn(expect: dict, observed: dict, *, now: datetime) -> list[str]:
    """The failed expectations of one turn, as readable messages (empty: all hold)."""
    failures: list[str] = []
    reply = observed.get("reply") or ""
    slots = observed.get("slots") or {}
    ticket_no = observed.get("ticket_no") or ""

    def fill(text) -> str:
        return str(text).replace("{ticket_no}", ticket_no)

    for key, value in (expect or {}).items():
        if key in ("status", "urgent", "submit"):
            if observed.get(key) != value:
                failures.append(f"{key}: expected {value!r}, got {observed.get(key)!r}")
        elif key == "asking":
            if "asking" in observed and observed["asking"] != value:
                failures.append(f"asking: expected {value!r}, got {observed['asking']!r}")
        elif key == "reply_contains":
            failures += [f"reply lacks {fill(p)!r}: {reply!r}" for p in _as_list(value) if fill(p) not in reply]
        elif key == "reply_contains_any":
            if not any(fill(p) in reply for p in value):
                failures.append(f"reply has none of {value!r}: {reply!r}")
        elif key == "reply_not_contains":
            failures += [f"reply must not contain {p!r}: {reply!r}" for p in _as_list(value) if fill(p) in reply]
        elif key == "slots":
            for path, wanted in value.items():
                got = _get(slots, path)
                got = None if got is _MISSING else got
                if (wanted is None and got is not None) or (wanted is not None and str(got) != str(wanted)):
                    failures.append(f"slot {path}: expected {wanted!r}, got {got!r}")
        elif key == "slots_contain":
            for path, piece in value.items():
                got = _get(slots, path)
                if got is _MISSING or got is None or str(piece) not in str(got):
                    failures.append(f"slot {path}: expected to contain {piece!r}, got {got!r}")
        elif key == "slots_present":
            failures += [f"slot {p} should be filled" for p in value if _get(slots, p) in (_MISSING, None, "", {})]
        elif key == "slots_absent":
            failures += [f"slot {p} should be empty, got {_get(slots, p)!r}" for p in value
                         if _get(slots, p) not in (_MISSING, None, "", {})]
        elif key == "when":
            for edge, spec in value.items():
                got = _get(slots, f"when.{edge}")
                wanted = _resolve_relative(spec, now)
                if got in (_MISSING, None) or not str(got).startswith(wanted):
                    failures.append(f"when.{edge}: expected {wanted}…, got {got!r}")
        else:
            failures.append(f"unknown expectation {key!r} (see tests/conversations/README.md)")
    return failures


def run_conversation(conversation: dict, send: Callable[[str], dict], *, now: datetime = DEFAULT_NOW) -> list[str]:
    """Play every turn through `send`; the failures, each prefixed with its turn number and user text."""
    turns = conversation["turns"]
    failures: list[str] = []
    max_turns = conversation.get("max_turns")
    if max_turns is not None and len(turns) > max_turns:
        failures.append(f"script has {len(turns)} turns, more than max_turns={max_turns}")
    submits = 0
    observed: dict = {}
    for number, turn in enumerate(turns, start=1):
        observed = send("" if turn.get("user") is None else str(turn["user"]))
        submits += bool(observed.get("submit"))
        for failure in check_turn(turn.get("expect") or {}, observed, now=now):
            failures.append(f"turn {number} ({str(turn.get('user'))[:30]!r}): {failure}")
    if submits > 1:
        failures.append(f"submit happened {submits} times; it must happen at most once")
    final = conversation.get("final_status")
    if final and observed.get("status") != final:
        failures.append(f"final status: expected {final!r}, got {observed.get('status')!r}")
    return failures


def http_backend(client, base: str = "/v1/intake/sessions") -> Callable[[str], dict]:
    """`send` over the HTTP API with any client that has `.post(url, json=...)` (FastAPI TestClient, httpx).

    The API returns the session's ticket on every message after submission; `submit` is true only on the message
    that first returned it.
    """
    opened = client.post(base)
    opened.raise_for_status()
    session_id = opened.json()["session_id"]
    seen: dict = {"ticket": None}

    def send(text: str) -> dict:
        response = client.post(f"{base}/{session_id}/messages", json={"text": text})
        response.raise_for_status()
        body = response.json()
        ticket = body.get("ticket")
        if isinstance(ticket, dict):
            ticket = ticket.get("ticket_no") or ticket.get("id")
        submit = bool(ticket) and not seen["ticket"]
        seen["ticket"] = seen["ticket"] or ticket
        observed = {"reply": body.get("reply"), "status": body.get("state"), "slots": body.get("slots"),
                    "urgent": body.get("urgent"), "submit": submit, "ticket_no": ticket}
        if "asking" in body:
            observed["asking"] = body["asking"]
        return observed

    return send


def names(conversations: Iterable[dict]) -> list[str]:
    return [c["name"] for c in conversations]
