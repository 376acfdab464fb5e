"""Chat intake dialogue (诉求受理对话): collect what, where, when and contact, read them back, submit once.

One job: a pure function over a JSON-serialisable state, so a session can live in the store and survive a restart::

    dialogue = IntakeDialogue(risk_fn=lambda text: detector.detect([text])[0])
    state, reply = dialogue.start()
    turn = dialogue.handle(state, "天心区芙蓉中路58号的路灯坏了三天了，电话13912345678")
    state = turn.state                     # store it; turn.reply goes to the citizen
    if turn.submit:                        # true exactly once, on "确认"
        reply = dialogue.submitted(state, "20261123-000123", "区城管局", expected_reply_by)

It asks one question at a time for what is still missing (what → where → when → contact), takes several slots
from one message, accepts corrections ("不对，是岳麓区不是天心区", "电话错了，是139…"), cancel (算了/取消),
chatter, empty and emoji-only messages, English (a note in both languages; slots still read) and traditional
characters (normalised). Every message goes through `risk_fn`: a high or critical flag adds, once per kind, a
caring message with the psychological assistance hotline 12356 (self_harm) or 119/120/110 advice (danger), and
marks the session `urgent` for good; collecting carries on. Wording lives in ``corpora/intake/templates.yaml``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Mapping
from zoneinfo import ZoneInfo

import yaml

from triage.intake_nlu import MessageReader, Reading, clean_description, merge_place, where_from
from triage.schemas import Channel, Location, Petitioner, PetitionIn, RiskLevel, RiskOut
from triage.text import mask_pii
from triage.timeparse import PARTS_OF_DAY

__all__ = ["IntakeDialogue", "Turn", "SLOTS", "STATUSES", "DEFAULT_TEMPLATES_PATH"]

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATES_PATH = Path(__file__).resolve().parent.parent / "corpora" / "intake" / "templates.yaml"
SLOTS = ("what", "where", "when", "contact")
STATUSES = ("collecting", "confirming", "submitted", "cancelled")
STATE_VERSION = 1
_MAX_MESSAGES = 30


@dataclass(frozen=True)
class Turn:
    """The dialogue's answer to one message. `submit` is true exactly once: on the turn the citizen confirms."""

    state: dict
    reply: str
    status: str
    slots: dict
    submit: bool = False
    risk: RiskOut | None = None
    urgent: bool = False
    asking: str | None = None

    def as_dict(self) -> dict:
        """The JSON an API returns (without the internal state)."""
        return {"reply": self.reply, "status": self.status, "slots": self.slots, "submit": self.submit,
                "urgent": self.urgent, "asking": self.asking,
                "risk": self.risk.model_dump(mode="json") if self.risk is not None else None}


def _load_yaml(source: Mapping | str | Path | None, default: Path) -> dict:
    if isinstance(source, Mapping):
        return dict(source)
    with open(source or default, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


class IntakeDialogue:
    """Slot-filling dialogue for petitions by chat (小程序留言受理).

    Parameters
    ----------
    now_fn : callable returning the current datetime (aware, any zone: it is converted to `timezone`); times like
        "昨天晚上" are resolved against it.
    risk_fn : text → RiskOut (e.g. ``lambda t: detector.detect([t])[0]``); None disables risk replies.
    templates, lexicon : a mapping or a YAML path; default ``corpora/intake/templates.yaml`` / ``lexicon.yaml``.
    timezone : IANA zone used by the default `now_fn`.
    max_what_chars : the description is kept up to this many characters (the rest is dropped, with the full
        messages kept in ``state["messages"]``).
    summary_what_chars : how much of the description the read-back shows.
    """

    def __init__(self, *, now_fn: Callable[[], datetime] | None = None,
                 risk_fn: Callable[[str], RiskOut] | None = None, templates: Mapping | str | Path | None = None,
                 lexicon: Mapping | str | Path | None = None, timezone: str = "Asia/Shanghai",
                 max_what_chars: int = 5000, summary_what_chars: int = 80):
        self.now_fn = now_fn
        self.risk_fn = risk_fn
        self.templates = templates
        self.lexicon = lexicon
        self.timezone = timezone
        self.max_what_chars = max_what_chars
        self.summary_what_chars = summary_what_chars
        self._t_ = _load_yaml(templates, DEFAULT_TEMPLATES_PATH)
        self._reader_ = MessageReader(lexicon=lexicon)

    # ---------------------------------------------------------------------------------------------- public

    def start(self) -> tuple[dict, str]:
        """A fresh session state and the greeting."""
        state = {
            "version": STATE_VERSION, "status": "collecting", "asking": "what", "correcting": None, "turns": 0,
            "slots": {slot: None for slot in SLOTS}, "where_followup": False, "misses": {}, "urgent": False,
            "alerts": [], "messages": [], "started_at": self._now().isoformat(), "ticket_no": None,
        }
        return state, self._t("greeting")

    def handle(self, state: dict, text: str | None) -> Turn:
        """Read one citizen message and return the next state and reply. `state` is not modified."""
        s = copy.deepcopy(state)
        s["turns"] = s.get("turns", 0) + 1
        now = self._now()
        reading = self._reader_.read(text, now)
        if not reading.empty:
            # Kept for the record with phone/ID numbers masked: the state is stored in plain view.
            s["messages"] = (s.get("messages", []) + [mask_pii(reading.text[:2000])])[-_MAX_MESSAGES:]
        risk, alerts = self._check_risk(s, reading)
        submit = False
        status = s["status"]
        if status in ("submitted", "cancelled"):
            reply = self._closed_reply(s)
        elif reading.cancel and "self_harm" not in alerts:
            s["status"], s["asking"] = "cancelled", None
            reply = self._t("cancelled")
        elif status == "confirming":
            reply, submit = self._confirming(s, reading)
        else:
            reply = self._collecting(s, reading)
        if alerts:
            alert_text = "\n".join(self._t(f"risk.{kind}") for kind in alerts)
            carry_on = self._t("risk.carry_on") if s["status"] in ("collecting", "confirming") else ""
            reply = f"{alert_text}\n{carry_on}{reply}"
        if reading.english:
            reply = f"{self._t('english')}\n{reply}"
        return Turn(state=s, reply=reply, status=s["status"], slots=copy.deepcopy(s["slots"]), submit=submit,
                    risk=risk, urgent=s["urgent"], asking=s.get("asking"))

    def submitted(self, state: dict, ticket_no: str, department: str | None = None,
                  expected_reply_by: datetime | date | str | None = None) -> str:
        """The final message once the caller has created the ticket (工单)."""
        department_part = self._t("submitted_department", department=department) if department else ""
        reply_by_part = ""
        if expected_reply_by:
            reply_by_part = self._t("submitted_reply_by", date=self._format_date(expected_reply_by))
        urgent_part = self._t("submitted_urgent") if state.get("urgent") else ""
        return self._t("submitted", ticket_no=ticket_no, department_part=department_part,
                       reply_by_part=reply_by_part, urgent_part=urgent_part)

    @staticmethod
    def with_ticket(state: dict, ticket_no: str) -> dict:
        """A copy of `state` that remembers its ticket number (quoted if the citizen writes again)."""
        new = copy.deepcopy(state)
        new["ticket_no"] = ticket_no
        return new

    def petition(self, state: dict) -> PetitionIn:
        """The petition to file for a submitted session: description, place, time and contact as collected."""
        slots = state["slots"]
        what = slots.get("what") or ""
        lines = [what]
        where, when, contact = slots.get("where") or {}, slots.get("when") or {}, slots.get("contact") or {}
        if where.get("text"):
            lines.append(f"地点：{where['text']}")
        if when.get("text"):
            lines.append(f"时间：{self._when_label(when)}")
        petitioner = None
        if contact and not contact.get("anonymous"):
            petitioner = Petitioner(phone=contact.get("phone"), name=contact.get("name"))
        return PetitionIn(
            title=what[:30] or None, content="\n".join(lines), channel=Channel.miniprogram,
            petitioner=petitioner, location=Location(text=where.get("text")) if where.get("text") else None,
            received_at=self._now(),
        )

    # ---------------------------------------------------------------------------------------------- stages

    def _collecting(self, s: dict, r: Reading) -> str:
        if r.empty:
            return self._t("empty", question=self._question(s))
        asked, correcting = s.get("asking"), s.get("correcting")
        filled = self._apply(s, r, asked=asked, correcting=correcting)
        if correcting and (correcting in filled or r.has_slot_value):
            s["correcting"] = None
        if asked and asked in SLOTS and asked not in filled and not r.offtopic:
            s["misses"][asked] = s["misses"].get(asked, 0) + 1
            if asked == "when" and s["misses"][asked] >= 2:
                s["slots"]["when"] = {"text": self._t("unknown"), "start": None, "end": None}
                filled.add("when")
        prefix = ""
        if r.invalid_phone and not r.phone:
            return self._t("invalid_phone", digits=r.invalid_phone)
        if len(r.text) > 500 and "what" in filled:
            prefix = self._t("long_message")
        elif filled:
            prefix = self._t("corrected") if (r.correction and s["slots"]["what"] and "what" not in filled) \
                else self._t("got_it")
        question = self._advance(s)
        if not filled:
            if r.greeting:
                return self._t("greeting_reply", question=question)
            if r.intent_only and s["asking"] == "what":
                return self._t("tell_more")
            if r.chatter:
                return self._t("offtopic", question=question)
            if not r.english:
                return self._t("not_understood", question=question)
        return prefix + question

    def _confirming(self, s: dict, r: Reading) -> tuple[str, bool]:
        if r.empty:
            return self._t("empty", question=self._t("confirm_reask")), False
        if self._is_confirm(r):
            s["status"], s["asking"] = "submitted", None
            return self._t("submitting"), True
        filled = self._apply(s, r, asked=s.get("asking") or "confirm", correcting="any")
        if filled:
            s["asking"] = "confirm"
            return self._t("corrected") + self._advance(s), False
        named = [f for f in r.fields_named if f in SLOTS]
        if named and len(r.residue) <= 6:
            s["status"], s["asking"], s["correcting"] = "collecting", named[0], named[0]
            field_name = self._t(f"field_names.{named[0]}")
            return self._t("ask_field", field=field_name), False
        if r.deny or r.correction:
            s["asking"] = "change"
            return self._t("ask_change"), False
        return self._t("confirm_reask"), False

    def _is_confirm(self, r: Reading) -> bool:
        if r.deny or r.has_slot_value:
            return False
        if r.confirm:
            return True
        # "对，没问题，谢谢": only yes-words and thanks; thanks alone is not a yes.
        compact = "".join(ch for ch in r.text.lower() if ch.isalnum())
        confirm_words = [w.lower() for w in self._reader_.lexicon.get("confirm", ())]
        said_yes = False
        for word in sorted(confirm_words + ["谢谢", "麻烦了", "辛苦了"], key=len, reverse=True):
            if word in compact:
                said_yes = said_yes or word in confirm_words
                compact = compact.replace(word, "")
        return said_yes and compact == ""

    def _closed_reply(self, s: dict) -> str:
        if s["status"] == "cancelled":
            return self._t("closed_cancelled")
        ticket_part = self._t("closed_ticket_part", ticket_no=s["ticket_no"]) if s.get("ticket_no") else ""
        return self._t("closed_submitted", ticket_part=ticket_part)

    # ---------------------------------------------------------------------------------------------- slots

    def _apply(self, s: dict, r: Reading, *, asked: str | None, correcting: str | None) -> set[str]:
        """Write what `r` says into s["slots"]; the names of the slots that changed."""
        slots, filled = s["slots"], set()
        if r.chatter or r.greeting:
            return filled  # "今天天气不错" says nothing about the report

        def may_override(slot: str) -> bool:
            # A message that only gives slot values (no narrative) is an answer or a correction.
            return (slots[slot] is None or asked == slot or r.correction or correcting in (slot, "any")
                    or not r.description)

        # what: a new description, a rewrite after "修改" (asked == "change"), or more detail while another
        # question or the read-back was open ("四方坪的工地" answers "where"; "物业也不管" adds to "what").
        lexicon, cap = self._reader_.lexicon, self.max_what_chars
        no_what = slots["what"] is None
        if ((correcting == "what" and not r.offtopic and r.residue)
                or (no_what and (r.description or (r.english and len(r.text.split()) >= 4)))
                or (no_what and asked == "what" and not (r.offtopic or r.intent_only) and len(r.residue) >= 2)
                or (asked == "change" and r.description)):
            slots["what"] = clean_description(lexicon, r.text, cap)
            filled.add("what")
        elif (slots["what"] and asked in ("where", "when", "contact", "confirm") and r.description and not r.place
              and not r.has_slot_value and not r.correction):
            slots["what"] = clean_description(lexicon, f"{slots['what']}；{r.text}", cap)
            filled.add("what")
        # where
        if r.place:
            merged = merge_place(slots["where"], r.place, override=may_override("where"))
            if merged != slots["where"]:
                slots["where"] = merged
                filled.add("where")
        elif ((asked == "where" or correcting == "where") and not r.has_slot_value and not r.description
              and len(r.text) <= 60):
            # "四方坪的工地", "我家楼下": a place the parser does not know is still the citizen's answer.
            if r.unknown and not slots["where"]:
                slots["where"] = where_from({}, text=self._t("unknown"))
            elif not r.unknown:
                slots["where"] = merge_place(slots["where"], {"detail": r.text}, override=True)
            filled.add("where")
        # when: "晚上施工太吵" in a description is a habit, not the time of the report; ask instead.
        habitual = r.when is not None and r.description and r.when.text in PARTS_OF_DAY
        if r.when and not habitual and may_override("when"):
            slots["when"] = r.when.as_dict()
            filled.add("when")
        elif (asked == "when" or correcting == "when") and r.unknown:
            slots["when"] = {"text": self._t("unknown"), "start": None, "end": None}
            filled.add("when")
        # contact
        contact = slots["contact"] or {"phone": None, "name": None, "anonymous": False}
        if r.phone:
            contact.update(phone=r.phone, anonymous=False)
            filled.add("contact")
        elif r.anonymous and (asked == "contact" or correcting in ("contact", "any") or not contact["phone"]):
            contact.update(phone=None, anonymous=True)
            filled.add("contact")
        if r.name:
            contact["name"] = r.name
        if contact["phone"] or contact["anonymous"] or contact["name"]:
            slots["contact"] = contact
        return filled

    # ---------------------------------------------------------------------------------------------- questions

    def _advance(self, s: dict) -> str:
        """Pick the next missing slot and return its question, or read everything back for confirmation."""
        slot, question = self._next_question(s)
        if slot == "where_followup":
            s["where_followup"] = True
            slot = "where"
        if slot is None:
            s["status"], s["asking"] = "confirming", "confirm"
            return self._summary(s)
        s["status"], s["asking"] = "collecting", slot
        return question

    def _question(self, s: dict) -> str:
        if s["status"] == "confirming":
            return self._t("confirm_reask")
        correcting = s.get("correcting")
        if correcting:
            return self._t("ask_field", field=self._t(f"field_names.{correcting}"))
        return self._next_question(s)[1] or self._t("confirm_reask")

    def _next_question(self, s: dict) -> tuple[str | None, str | None]:
        slots = s["slots"]
        if not slots["what"]:
            return "what", self._t("ask.what")
        where = slots["where"]
        if not where:
            return "where", self._t("ask.where")
        if not s.get("where_followup") and where.get("text") != self._t("unknown"):
            has_area = bool(where.get("district") or where.get("street"))
            has_spot = bool(where.get("street") or where.get("community") or where.get("road") or where.get("detail"))
            if has_spot and not has_area:
                spot = where.get("community") or where.get("road") or where.get("detail")
                return "where_followup", self._t("ask.where_district", spot=spot)
            if has_area and not has_spot:
                return "where_followup", self._t("ask.where_spot", district=where.get("district") or where["text"])
        if not slots["when"]:
            return "when", self._t("ask.when")
        contact = slots["contact"]
        if not contact or not (contact.get("phone") or contact.get("anonymous")):
            return "contact", self._t("ask.contact")
        return None, None

    def _summary(self, s: dict) -> str:
        slots = s["slots"]
        what = slots["what"] or self._t("not_given")
        if len(what) > self.summary_what_chars:
            what = what[: self.summary_what_chars] + "…"
        where = (slots["where"] or {}).get("text") or self._t("not_given")
        when = self._when_label(slots["when"]) if slots["when"] else self._t("not_given")
        contact = slots["contact"] or {}
        if contact.get("anonymous"):
            contact_text = self._t("anonymous")
        else:
            contact_text = " ".join(p for p in (contact.get("name"), contact.get("phone")) if p) or self._t("not_given")
        return self._t("summary", what=what, where=where, when=when, contact=contact_text)

    @staticmethod
    def _when_label(when: dict) -> str:
        """'昨天晚上八点（11月24日 20:00–21:00）': the citizen's words and what we understood."""
        if not when.get("start"):
            return when.get("text") or ""
        start, end = datetime.fromisoformat(when["start"]), datetime.fromisoformat(when["end"])
        day = f"{start.month}月{start.day}日"
        whole_days = start.hour == start.minute == 0 and end.hour == end.minute == 0
        if whole_days and (end - start).days <= 1:
            resolved = day
        elif whole_days or (end - start).days >= 1:
            resolved = f"{day}–{end.month}月{end.day}日"
        else:
            resolved = f"{day} {start:%H:%M}–{end:%H:%M}"
        return f"{when['text']}（{resolved}）"

    # ---------------------------------------------------------------------------------------------- risk

    def _check_risk(self, s: dict, r: Reading) -> tuple[RiskOut | None, list[str]]:
        """Run `risk_fn`; mark the session urgent and return the alert kinds not yet told to the citizen."""
        if self.risk_fn is None or r.empty:
            return None, []
        try:
            risk = self.risk_fn(r.text)
        except Exception:  # noqa: BLE001 - a failing detector must not break the citizen's chat
            logger.exception("risk_fn failed; continuing without a risk check for this message")
            return None, []
        kinds: list[str] = []
        danger = self._reader_.lexicon.get("danger", {})
        if risk is not None and RiskLevel(risk.level) >= RiskLevel.high:
            s["urgent"] = True
        for flag in risk.flags if risk else ():
            if RiskLevel(flag.level) < RiskLevel.high:
                continue
            s["urgent"] = True
            if flag.type == "self_harm":
                kinds.append("self_harm")
            elif flag.type in ("public_safety", "violence"):
                found = [k for k in ("fire_gas", "medical", "police") if any(w in r.text for w in danger.get(k, ()))]
                kinds.extend(found or (["police"] if flag.type == "violence" else ["other"]))
            else:
                kinds.append("other")
        new = [k for k in dict.fromkeys(kinds) if k not in s["alerts"]]
        s["alerts"] = s["alerts"] + new
        return risk, new

    # ---------------------------------------------------------------------------------------------- helpers

    def _now(self) -> datetime:
        """Now in the dialogue's time zone: "昨天晚上八点" means Beijing evening even if the caller's clock is UTC."""
        if self.now_fn is None:
            return datetime.now(ZoneInfo(self.timezone))
        now = self.now_fn()
        return now.astimezone(ZoneInfo(self.timezone)) if now.tzinfo is not None else now

    def _format_date(self, value: datetime | date | str) -> str:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        label = f"{value.month}月{value.day}日"
        return label if value.year == self._now().year else f"{value.year}年{label}"

    def _t(self, key: str, **values) -> str:
        node = self._t_
        for part in key.split("."):
            node = node[part]
        return str(node).format(**values) if values else str(node)
