"""SLA deadlines: working days, public holidays and 调休 make-up workdays, category rules, the YAML file."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from triage.errors import DataError, InvalidInput
from triage.sla import SlaPolicy, WorkingCalendar

BEIJING = timezone(timedelta(hours=8))
SLA_YAML = Path(__file__).resolve().parent.parent / "corpora" / "sla.yaml"


def at(year, month, day, hour=0, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BEIJING)


@pytest.fixture(scope="module")
def policy() -> SlaPolicy:
    return SlaPolicy.load(SLA_YAML)


def small_policy(**calendar) -> SlaPolicy:
    return SlaPolicy.from_dict({
        "calendar": calendar,
        "default": {"urgent": {"accept": "2h", "reply": "24h"}, "normal": {"accept": "1wd", "reply": "3wd"}},
        "categories": {"燃气供应": {"urgent": {"accept": "30m"}}},
        "escalation": {"levels": [{"name": "街道/乡镇"}, {"name": "区县", "after": "1wd"}]},
    })


def test_one_working_day_from_friday_is_due_monday_same_time(policy):
    deadlines = policy.deadlines("normal", None, at(2026, 11, 27, 10))  # Friday
    assert deadlines.accept_by == at(2026, 11, 30, 10)  # Monday
    assert deadlines.reply_by == at(2026, 12, 2, 10)  # Wednesday


def test_working_day_deadline_skips_the_national_day_holiday(policy):
    deadlines = policy.deadlines("normal", None, at(2026, 9, 30, 10))  # Wednesday before 国庆 1–7 October
    assert deadlines.accept_by == at(2026, 10, 8, 10)
    # 8, 9 October, then Saturday 10 October is a 调休 workday
    assert deadlines.reply_by == at(2026, 10, 10, 10)


def test_tiaoxiu_saturday_counts_as_a_working_day(policy):
    # Friday 13 February 2026; Saturday 14 February is a make-up workday before 春节
    assert policy.deadlines("normal", None, at(2026, 2, 13, 10)).accept_by == at(2026, 2, 14, 10)
    # the same Friday a week earlier: the Saturday after it is an ordinary weekend day
    assert policy.deadlines("normal", None, at(2026, 2, 6, 10)).accept_by == at(2026, 2, 9, 10)


def test_spring_festival_holiday_is_skipped_whole(policy):
    # received on the make-up Saturday; 15–23 February are off
    assert policy.deadlines("normal", None, at(2026, 2, 14, 10)).accept_by == at(2026, 2, 24, 10)


def test_ticket_received_on_a_weekend_is_due_at_the_end_of_the_next_working_day(policy):
    assert policy.deadlines("normal", None, at(2026, 11, 28, 15)).accept_by == at(2026, 12, 1, 0)  # Sat → end of Mon


def test_wall_clock_deadline_runs_through_a_holiday(policy):
    assert policy.deadlines("urgent", None, at(2026, 10, 1, 10)).accept_by == at(2026, 10, 1, 12)
    assert policy.deadlines("urgent", None, at(2026, 10, 1, 10)).reply_by == at(2026, 10, 2, 10)


def test_shipped_calendar_has_the_2026_working_day_count_of_the_state_council_notice(policy):
    # 261 weekdays, 19 of them holidays, 6 make-up weekend days
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(365)]
    assert sum(policy.calendar.is_working_day(d) for d in days) == 248
    assert all(d.isoweekday() >= 6 for d in policy.calendar.makeup_workdays)
    assert not policy.calendar.is_working_day(date(2026, 5, 5))
    assert policy.calendar.is_working_day(date(2026, 5, 9))


def test_gas_outage_gets_a_stricter_deadline_than_the_default(policy):
    received = at(2026, 11, 25, 9)
    gas = policy.deadlines("urgent", ["城乡建设", "城市建设和市政管理", "燃气供应"], received)
    default = policy.deadlines("urgent", ["城乡建设", "城市建设和市政管理", "小区管理"], received)
    assert gas.accept_by == at(2026, 11, 25, 9, 30)
    assert gas.reply_by < default.reply_by
    assert default.accept_by == at(2026, 11, 25, 11)


def test_category_rule_overrides_the_default_field_by_field():
    policy = small_policy()
    deadlines = policy.deadlines("urgent", "燃气供应", at(2026, 11, 25, 9))
    assert deadlines.accept_by == at(2026, 11, 25, 9, 30)
    assert deadlines.reply_by == at(2026, 11, 26, 9)  # from the default


def test_office_hours_stop_the_working_clock_overnight():
    policy = small_policy(working_hours={"start": "09:00", "end": "17:30"})
    assert policy.calendar.add(at(2026, 11, 27, 16), policy.rule("normal").accept) == at(2026, 11, 30, 16)
    four_hours = SlaPolicy.from_dict({
        "calendar": {"working_hours": {"start": "09:00", "end": "17:30"}},
        "default": {"normal": {"accept": "4wh", "reply": "3wd"}},
        "escalation": {"levels": [{"name": "街道/乡镇"}]},
    })
    # Friday 16:00 + 4 working hours: 1.5 h on Friday, 2.5 h on Monday from 09:00
    assert four_hours.deadlines("normal", None, at(2026, 11, 27, 16)).accept_by == at(2026, 11, 30, 11, 30)
    # received Saturday: one office day is due at Monday's closing time
    assert policy.deadlines("normal", None, at(2026, 11, 28, 10)).accept_by == at(2026, 11, 30, 17, 30)


def test_working_seconds_between_ignore_weekend_and_holiday(policy):
    calendar = policy.calendar
    assert calendar.working_seconds_between(at(2026, 11, 27, 12), at(2026, 11, 30, 12)) == 24 * 3600
    assert calendar.working_seconds_between(at(2026, 9, 30, 0), at(2026, 10, 8, 0)) == 24 * 3600


def test_naive_received_at_is_refused(policy):
    with pytest.raises(InvalidInput, match="timezone-aware"):
        policy.deadlines("normal", None, datetime(2026, 11, 25, 9))


def test_unknown_urgency_is_refused(policy):
    with pytest.raises(InvalidInput, match="unknown urgency"):
        policy.deadlines("critical", None, at(2026, 11, 25, 9))


def test_bare_off_key_in_holidays_is_refused_not_silently_dropped():
    # YAML 1.1 reads `off:` as the boolean False; the loader must not lose the holiday
    with pytest.raises(DataError, match="unknown keys"):
        small_policy(holidays=[{"name": "x", False: "2026-10-01..2026-10-07"}])


@pytest.mark.parametrize("bad", ["2 hours", "0h", "-1wd", "wd"])
def test_unreadable_duration_is_refused(bad):
    with pytest.raises(DataError):
        SlaPolicy.from_dict({"default": {"normal": {"accept": bad, "reply": "3wd"}},
                             "escalation": {"levels": [{"name": "街道"}]}})


def test_day_both_holiday_and_workday_is_refused():
    with pytest.raises(DataError, match="both"):
        WorkingCalendar(holidays=[date(2026, 10, 10)], makeup_workdays=[date(2026, 10, 10)])


def test_deadline_in_a_year_without_published_holidays_logs_a_warning(caplog):
    policy = SlaPolicy.load(SLA_YAML)
    with caplog.at_level(logging.WARNING, logger="triage.sla"):
        policy.deadlines("normal", None, at(2026, 6, 1, 9))
        assert not caplog.records
        policy.deadlines("normal", None, at(2027, 3, 1, 9))
    assert "2027" in caplog.text


def test_escalation_chain_levels_and_aliases_come_from_the_yaml(policy):
    assert [level.name for level in policy.levels] == ["村/社区", "街道/乡镇", "区县", "市"]
    assert policy.level_index("街道") == policy.level_index("乡镇") == 1
    assert policy.level_index(None) == 0
    with pytest.raises(InvalidInput, match="unknown level"):
        policy.level_index("省")


def test_weekend_days_come_from_the_calendar_config():
    six_day_week = small_policy(weekend=["sun"])
    assert six_day_week.deadlines("normal", None, at(2026, 11, 27, 10)).accept_by == at(2026, 11, 28, 10)
    with pytest.raises(DataError, match="weekend"):
        small_policy(weekend=["sat", "xyz"])


def test_batch_deadlines_equal_one_at_a_time(policy):
    received = [at(2026, 2, 13, 10) + timedelta(hours=7 * i, minutes=13 * i) for i in range(300)]
    urgencies = ["normal", "urgent", "normal"] * 100
    categories = [None, "燃气供应", ["城乡建设", "安全生产", "安全隐患"]] * 100
    batch = policy.deadlines_batch(urgencies, categories, received)
    assert batch == [policy.deadlines(u, c, r) for u, c, r in zip(urgencies, categories, received)]
    assert len({d.accept_by - r for d, r in zip(batch, received)}) > 3  # weekends and holidays bend the spans


def test_load_without_a_path_reads_sla_yaml_from_the_configured_corpora_dir(policy):
    default = SlaPolicy.load()
    assert default.source.endswith("sla.yaml")
    assert [level.name for level in default.levels] == [level.name for level in policy.levels]
