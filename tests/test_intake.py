"""Chat intake dialogue: the scripted conversations of tests/conversations/*.yaml, plus the contract of
IntakeDialogue (pure function over a JSON state, submit exactly once, risk replies, templates as data)."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime
from pathlib import Path

import pytest

from triage.intake import IntakeDialogue, Turn
from triage.schemas import PetitionIn, RiskFlag, RiskLevel, RiskOut

_RUNNER_PATH = Path(__file__).parent / "conversations" / "runner.py"
_spec = importlib.util.spec_from_file_location("conversation_runner", _RUNNER_PATH)
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)

NOW = runner.DEFAULT_NOW
CONVERSATIONS = runner.load_conversations()

# A stand-in for triage.risk.RiskDetector (another engineer's component): a few keywords per flag type. The lead's
# integration tests run the same conversations with the real detector.
_STAND_IN_RULES = {
    "self_harm": ("不想活", "跳楼", "自杀", "轻生", "活着没意思"),
    "public_safety": ("煤气味", "燃气味", "着火", "漏气", "冒烟", "受伤"),
    "violence": ("拿刀", "砍人", "打人"),
}


def stand_in_risk(text: str) -> RiskOut:
    flags = [RiskFlag(type=kind, level=RiskLevel.critical if kind == "self_harm" else RiskLevel.high, score=0.9)
             for kind, words in _STAND_IN_RULES.items() if any(w in text for w in words)]
    level = max((f.level for f in flags), key=lambda lv: RiskLevel(lv).rank, default=RiskLevel.none)
    return RiskOut(level=level, flags=flags)


def make_dialogue(**kwargs) -> IntakeDialogue:
    return IntakeDialogue(now_fn=lambda: NOW, risk_fn=stand_in_risk, **kwargs)


def library_backend(dialogue: IntakeDialogue):
    """`send(text) -> observed` over the library; the state goes through JSON between turns, as in the store."""
    state, _ = dialogue.start()
    stored = {"state": json.dumps(state, ensure_ascii=False), "tickets": 0}

    def send(text: str) -> dict:
        turn = dialogue.handle(json.loads(stored["state"]), text)
        reply, ticket_no, new_state = turn.reply, None, turn.state
        if turn.submit:
            stored["tickets"] += 1
            ticket_no = f"20261125-{stored['tickets']:06d}"
            new_state = dialogue.with_ticket(turn.state, ticket_no)
            reply = dialogue.submitted(new_state, ticket_no, "区城市管理局", datetime(2026, 11, 30, 18, 0))
        stored["state"] = json.dumps(new_state, ensure_ascii=False)
        return {"reply": reply, "status": turn.status, "slots": turn.slots, "urgent": turn.urgent,
                "submit": turn.submit, "ticket_no": ticket_no, "asking": turn.asking}

    return send


def test_there_are_at_least_25_scripted_conversations():
    assert len(CONVERSATIONS) >= 25


@pytest.mark.parametrize("conversation", CONVERSATIONS, ids=runner.names(CONVERSATIONS))
def test_scripted_conversation(conversation):
    failures = runner.run_conversation(conversation, library_backend(make_dialogue()), now=NOW)
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------------------------- contract


def _play(dialogue: IntakeDialogue, messages: list[str]) -> list[Turn]:
    state, _ = dialogue.start()
    turns = []
    for text in messages:
        turn = dialogue.handle(state, text)
        turns.append(turn)
        state = turn.state
    return turns


def test_handle_does_not_modify_the_state_it_is_given():
    dialogue = make_dialogue()
    state, _ = dialogue.start()
    before = json.dumps(state, sort_keys=True)
    dialogue.handle(state, "天心区芙蓉中路的路灯坏了，昨天晚上，电话13912345678")
    assert json.dumps(state, sort_keys=True) == before


def test_same_state_and_message_give_the_same_turn():
    dialogue = make_dialogue()
    state, _ = dialogue.start()
    first = dialogue.handle(state, "岳麓区麓山南路的井盖丢了")
    second = dialogue.handle(json.loads(json.dumps(state)), "岳麓区麓山南路的井盖丢了")
    assert (first.reply, first.slots, first.state) == (second.reply, second.slots, second.state)


def test_submit_is_true_exactly_once_even_if_the_citizen_confirms_twice():
    turns = _play(make_dialogue(), ["天心区书院路的路灯坏了，三天前，匿名", "确认", "确认"])
    assert [t.submit for t in turns] == [False, True, False]
    assert turns[-1].status == "submitted"


def test_slots_always_have_the_four_keys_and_where_has_every_place_field():
    turn = _play(make_dialogue(), ["岳麓区桃子湖小区的路灯坏了"])[0]
    assert set(turn.slots) == {"what", "where", "when", "contact"}
    assert set(turn.slots["where"]) == {"text", "province", "city", "district", "street", "community", "road",
                                        "detail"}


def test_phone_number_is_kept_out_of_the_description():
    turn = _play(make_dialogue(), ["天心区芙蓉中路的路灯坏了三天了，电话13912345678"])[0]
    assert "13912345678" not in turn.slots["what"]
    assert turn.slots["contact"]["phone"] == "13912345678"


def test_urgent_stays_true_after_the_risky_message():
    turns = _play(make_dialogue(), ["楼道里有煤气味", "雨花区井湾子小区", "刚才", "匿名"])
    assert [t.urgent for t in turns] == [True, True, True, True]
    assert "119" in turns[0].reply and "119" not in turns[1].reply
    assert turns[0].risk is not None and turns[0].risk.level == RiskLevel.high


def test_a_failing_risk_function_does_not_break_the_chat():
    def broken(_text: str) -> RiskOut:
        raise RuntimeError("detector down")

    dialogue = IntakeDialogue(now_fn=lambda: NOW, risk_fn=broken)
    turn = _play(dialogue, ["岳麓区的路灯坏了"])[0]
    assert turn.status == "collecting" and turn.risk is None and not turn.urgent


def test_without_risk_function_nothing_is_urgent():
    dialogue = IntakeDialogue(now_fn=lambda: NOW)
    turn = _play(dialogue, ["我不想活了，工资一直拖欠"])[0]
    assert turn.urgent is False and turn.risk is None


def test_submitted_message_names_ticket_department_and_reply_date():
    dialogue = make_dialogue()
    turns = _play(dialogue, ["天心区书院路的路灯坏了，三天前，匿名", "确认"])
    reply = dialogue.submitted(turns[-1].state, "20261123-000123", "天心区城市管理局", datetime(2026, 11, 30))
    assert "20261123-000123" in reply and "天心区城市管理局" in reply and "11月30日" in reply


def test_petition_is_built_from_the_collected_slots():
    dialogue = make_dialogue()
    turns = _play(dialogue, ["天心区书院路的路灯坏了，昨天晚上八点，电话13912345678", "确认"])
    petition = dialogue.petition(turns[-1].state)
    assert isinstance(petition, PetitionIn)
    assert petition.channel.value == "miniprogram"
    assert petition.petitioner.phone == "13912345678"
    assert "书院路" in petition.location.text and "路灯" in petition.content


def test_templates_can_be_replaced_by_a_city():
    dialogue = make_dialogue()
    templates = json.loads(json.dumps(dialogue._t_))
    templates["greeting"] = "欢迎使用星城市民热线，请说出您的诉求。"
    custom = make_dialogue(templates=templates)
    assert custom.start()[1] == "欢迎使用星城市民热线，请说出您的诉求。"


def test_state_is_json_serialisable_at_every_turn():
    turns = _play(make_dialogue(), ["😀", "Hello there, my street is dark", "天心区", "不对，是岳麓区", "前天", "匿名",
                                    "修改", "电话", "13912345678", "确认"])
    for turn in turns:
        assert json.loads(json.dumps(turn.state)) == turn.state
        json.dumps(turn.as_dict())


@pytest.mark.parametrize(
    "text",
    [None, "", "   ", "<script>alert(1)</script>", "。。。！！", "\x00\x01", "1" * 40, "\ud800abc", "12345", "ok",
     "天心区" * 5000, "路灯坏了，" * 4000],
    ids=["none", "empty", "spaces", "html", "punctuation", "control", "digits", "surrogate", "short_number", "ok",
         "repeated_place", "huge"],
)
def test_odd_input_gets_a_reply_and_a_valid_state(text):
    dialogue = make_dialogue()
    state, _ = dialogue.start()
    turn = dialogue.handle(state, text)
    assert turn.reply and turn.status == "collecting" and not turn.submit
    assert len(turn.slots["what"] or "") <= dialogue.max_what_chars
    json.dumps(turn.state)


def test_a_utc_clock_is_read_in_beijing_time():
    utc_now = datetime.fromisoformat("2026-11-25T02:30:00+00:00")  # 10:30 in Beijing
    dialogue = IntakeDialogue(now_fn=lambda: utc_now)
    turn = _play(dialogue, ["岳麓区麓山南路的路灯坏了，昨天晚上八点发现的"])[0]
    assert turn.slots["when"]["start"] == "2026-11-24T20:00:00+08:00"


def test_more_detail_while_another_question_is_open_is_added_to_the_description():
    turns = _play(make_dialogue(), ["小区电梯坏了", "而且物业一直不管，老人没法下楼"])
    assert turns[-1].slots["what"].startswith("小区电梯坏了")
    assert "物业一直不管" in turns[-1].slots["what"]
    assert turns[-1].asking == "where"


def test_thanks_alone_at_the_read_back_is_not_a_confirmation():
    turns = _play(make_dialogue(), ["天心区书院路的路灯坏了，三天前，匿名", "谢谢", "好的谢谢"])
    assert [t.status for t in turns] == ["confirming", "confirming", "submitted"]
    assert [t.submit for t in turns] == [False, False, True]


def test_stored_messages_have_phone_numbers_masked():
    turn = _play(make_dialogue(), ["天心区书院路的路灯坏了，电话13912345678"])[0]
    assert "13912345678" not in json.dumps(turn.state["messages"], ensure_ascii=False)


def test_words_like_anonymity_inside_a_description_do_not_skip_the_phone_question():
    turns = _play(make_dialogue(), ["天心区书院路的物业催缴毫不留情，老人出行很不方便，三天前", "出行很不方便"])
    assert turns[0].slots["contact"] is None and turns[0].asking == "contact"
    assert turns[1].asking == "contact"


def test_more_detail_at_the_read_back_is_added_but_after_修改_it_replaces():
    dialogue = make_dialogue()
    turns = _play(dialogue, ["天心区书院路的路灯坏了，三天前，匿名", "补充一下，旁边的井盖也松动了，很危险"])
    assert turns[-1].status == "confirming"
    assert "路灯" in turns[-1].slots["what"] and "井盖" in turns[-1].slots["what"]
    turns = _play(dialogue, ["天心区书院路的路灯坏了，三天前，匿名", "修改", "书院路的井盖松动了，很危险"])
    assert "路灯" not in turns[-1].slots["what"] and "井盖" in turns[-1].slots["what"]
