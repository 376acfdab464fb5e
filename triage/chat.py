"""Chat intake sessions (小程序受理) in the store: each message runs the dialogue, and a confirmed session becomes a
stored, triaged petition with a ticket the citizen can quote.

Risk-aware: the first high/critical message of a session is filed at once as its own petition with an urgent ticket,
so the alert is raised (and webhooks called) and the urgent deadline starts before the citizen has finished answering
questions. On confirmation that same ticket takes the whole report, so the citizen quotes one number.
"""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING

from triage import tickets
from triage.errors import NotFound
from triage.intake import IntakeDialogue, Turn
from triage.schemas import Channel, PetitionIn, RiskLevel, RiskOut
from triage.store.models import IntakeSession

if TYPE_CHECKING:
    from triage.service import TriageService

log = logging.getLogger(__name__)


class IntakeDesk:
    def __init__(self, service: "TriageService"):
        self.service = service
        self.dialogue = IntakeDialogue(now_fn=service.now, risk_fn=self._risk)

    def _risk(self, text: str) -> RiskOut:
        detector = self.service.provider.get().risk
        return detector.detect([text])[0] if detector is not None else RiskOut()

    def open(self) -> dict:
        state, reply = self.dialogue.start()
        session_id = f"S{uuid.uuid4().hex[:16]}"
        now = self.service.now()
        with self.service.db.session() as session:
            session.add(IntakeSession(id=session_id, status="collecting", state=state, turns=0, created_at=now, updated_at=now))
        return {"session_id": session_id, "reply": reply, "state": "collecting"}

    def get(self, session_id: str) -> dict:
        with self.service.db.session() as session:
            row = self._row(session, session_id)
            return {"session_id": row.id, "state": row.status, "slots": row.state.get("slots"), "ticket": row.ticket_id,
                    "turns": row.turns}

    @staticmethod
    def _row(session, session_id: str) -> IntakeSession:
        row = session.get(IntakeSession, session_id)
        if row is None:
            raise NotFound(f"no intake session {session_id!r}", field="session_id")
        return row

    def message(self, session_id: str, text: str | None) -> dict:
        with self.service.db.session() as session:
            row = self._row(session, session_id)
            state = row.state
        turn = self.dialogue.handle(state, text)
        new_state, reply, ticket_no = turn.state, turn.reply, None
        if self._raises_alert(turn) and not state.get("risk_petition"):
            risk_petition, risk_ticket = self._file_risk_petition(session_id, text or "")
            new_state = {**new_state, "risk_petition": risk_petition, "risk_ticket": risk_ticket}
        if turn.submit:
            ticket_no, department, reply_by = self._file_ticket(session_id, new_state, turn)
            new_state = self.dialogue.with_ticket(new_state, ticket_no)
            reply = self.dialogue.submitted(new_state, ticket_no, department, reply_by)
        with self.service.db.session() as session:
            row = self._row(session, session_id)
            row.state = new_state
            row.status = turn.status
            row.turns = new_state.get("turns", row.turns + 1)
            row.updated_at = self.service.now()
            if ticket_no:
                row.ticket_id = ticket_no
            ticket_no = row.ticket_id
        out = {"session_id": session_id, "reply": reply, "state": turn.status, "slots": turn.slots,
               "urgent": turn.urgent, "asking": turn.asking, "ticket": ticket_no,
               "urgent_ticket": new_state.get("risk_ticket")}
        if turn.risk is not None and turn.risk.level >= RiskLevel.high:
            out["risk"] = turn.risk.model_dump(mode="json")
        return out

    @staticmethod
    def _raises_alert(turn: Turn) -> bool:
        return turn.risk is not None and turn.risk.level >= RiskLevel.high

    def _file_risk_petition(self, session_id: str, text: str) -> tuple[str, str]:
        """File the alarming message now, as its own petition with an urgent ticket, so neither the alert nor the
        urgent acceptance deadline waits for the slots."""
        petition = PetitionIn(id=f"{session_id}-risk", content=text, channel=Channel.miniprogram)
        result = self.service.submit(petition)
        with self.service.db.session() as session:
            ticket = tickets.create_ticket(session, self._as_urgent(result), policy=self.service.sla,
                                           now=self.service.now(), start_level=self.service.settings.ticket_start_level)
            ticket_no = ticket.id
        log.warning("intake session %s: high-risk message filed as %s, urgent ticket %s", session_id, petition.id, ticket_no)
        return petition.id, ticket_no

    @staticmethod
    def _as_urgent(result):
        if result.priority.value == "urgent":
            return result
        return result.model_copy(update={"priority": "urgent", "needs_review": True,
                                         "review_reasons": ["urgent: risk raised during the chat", *result.review_reasons]})

    def _file_ticket(self, session_id: str, state: dict, turn: Turn) -> tuple[str, str | None, object]:
        petition = self.dialogue.petition(state).model_copy(update={"id": session_id})
        result = self.service.submit(petition)
        if turn.urgent:
            result = self._as_urgent(result)
        with self.service.db.session() as session:
            ticket = None
            if state.get("risk_ticket"):
                ticket = tickets.attach_petition(session, state["risk_ticket"], result, now=self.service.now(),
                                                 note="the citizen completed the report in the chat")
            if ticket is None:
                ticket = tickets.create_ticket(session, result, policy=self.service.sla, now=self.service.now(),
                                               start_level=self.service.settings.ticket_start_level)
            department = None
            if ticket.department_id:
                known = self.service.provider.get().departments.departments.get(ticket.department_id)
                department = known.name if known else ticket.department_id
            return ticket.id, department, ticket.reply_by
