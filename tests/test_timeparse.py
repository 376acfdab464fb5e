"""Chinese time expressions resolved against a fixed `now` (Wednesday 2026-11-25 10:30, Beijing time)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from triage.timeparse import TimeRange, parse_when

CST = timezone(timedelta(hours=8))
NOW = datetime(2026, 11, 25, 10, 30, tzinfo=CST)  # a Wednesday


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=CST)


@pytest.mark.parametrize(
    "text, start, end",
    [
        ("昨天晚上八点", at(11, 24, 20), at(11, 24, 21)),
        ("昨晚八点半", at(11, 24, 20, 30), at(11, 24, 21)),
        ("前天凌晨三点", at(11, 23, 3), at(11, 23, 4)),
        ("大前天", at(11, 22), at(11, 23)),
        ("今天早上", at(11, 25, 6), at(11, 25, 9)),
        ("今天中午12点", at(11, 25, 12), at(11, 25, 13)),
        ("上午十点一刻", at(11, 25, 10, 15), at(11, 25, 10, 30)),
        ("昨天下午三点十分", at(11, 24, 15, 10), at(11, 24, 15, 40)),
        ("昨天三点", at(11, 24, 15), at(11, 24, 16)),
        ("昨天半夜两点", at(11, 25, 2), at(11, 25, 3)),
        ("晚上12点", at(11, 25, 0), at(11, 25, 1)),
        ("上周三", at(11, 18), at(11, 19)),
        ("上周三晚上8:30", at(11, 18, 20, 30), at(11, 18, 21)),
        ("这周一下午", at(11, 23, 13), at(11, 23, 18)),
        ("本周日", at(11, 29), at(11, 30)),
        ("周五", at(11, 20), at(11, 21)),
        ("上周", at(11, 16), at(11, 23)),
        ("上周末", at(11, 21), at(11, 23)),
        ("三天前", at(11, 22), at(11, 23)),
        ("三天前的晚上", at(11, 22, 18), at(11, 23)),
        ("两个小时前", at(11, 25, 8), at(11, 25, 9)),
        ("十分钟前", at(11, 25, 10, 10), at(11, 25, 10, 30)),
        ("刚才", at(11, 25, 10), at(11, 25, 10, 30)),
        ("刚刚", at(11, 25, 10), at(11, 25, 10, 30)),
        ("11月20号下午", at(11, 20, 13), at(11, 20, 18)),
        ("11月20日", at(11, 20), at(11, 21)),
        ("2026年11月20日", at(11, 20), at(11, 21)),
        ("二〇二六年十一月二十日", at(11, 20), at(11, 21)),
        ("2026-11-20", at(11, 20), at(11, 21)),
        ("11/20", at(11, 20), at(11, 21)),
        ("20号下午", at(11, 20, 13), at(11, 20, 18)),
        ("去年3月5号", at(3, 5, year=2025), at(3, 6, year=2025)),
        ("上个月", at(10, 1), at(11, 1)),
        ("这个月", at(11, 1), NOW),
        ("这几天", at(11, 19), NOW),
        ("前几天", at(11, 18), at(11, 25)),
        ("最近", NOW - timedelta(days=30), NOW),
        ("已经三天了", NOW - timedelta(days=3), NOW),
        ("yesterday evening", at(11, 24, 18), at(11, 25)),
        ("3 days ago", at(11, 22), at(11, 23)),
    ],
)
def test_expression_resolves_to_range(text, start, end):
    found = parse_when(text, NOW)
    assert found is not None, text
    assert (found.start, found.end) == (start, end)


def test_today_ends_at_now_not_at_midnight():
    found = parse_when("今天", NOW)
    assert (found.start, found.end) == (at(11, 25), NOW)


def test_date_later_in_the_year_means_last_year():
    found = parse_when("12月3日", NOW)
    assert found.start == at(12, 3, year=2025)


def test_weekday_without_prefix_later_this_week_means_last_week():
    assert parse_when("周五", NOW).start == at(11, 20)  # Friday has not come yet this week
    assert parse_when("周一", NOW).start == at(11, 23)


def test_half_a_month_ago_is_a_range_around_fifteen_days_back():
    found = parse_when("半个月前", NOW)
    assert found.start < NOW - timedelta(days=15) < found.end <= NOW


def test_more_than_a_month_lasts_until_now():
    found = parse_when("路灯坏了一个多月了", NOW)
    assert found.end == NOW and found.start <= NOW - timedelta(days=30)
    assert found.text.startswith("一个多月")


def test_matched_text_is_reported():
    found = parse_when("我昨天晚上八点在小区门口看到的", NOW)
    assert found.text == "昨天晚上八点"
    assert found.as_dict() == {"text": "昨天晚上八点", "start": "2026-11-24T20:00:00+08:00",
                               "end": "2026-11-24T21:00:00+08:00"}


def test_traditional_characters_and_full_width_digits_are_read():
    assert parse_when("昨天晚上８點", NOW).start == at(11, 24, 20)


@pytest.mark.parametrize(
    "text",
    ["", "芙蓉中路58号", "有一点臭", "有两点要求", "电话13912345678", "没有时间处理", "我家12345号", "井盖丢了", "😀"],
)
def test_text_without_a_time_gives_none(text):
    assert parse_when(text, NOW) is None


def test_house_number_is_not_read_as_a_day_but_a_day_next_to_a_time_is():
    assert parse_when("芙蓉中路58号", NOW) is None
    assert parse_when("20号晚上", NOW).start == at(11, 20, 18)


def test_time_of_day_alone_is_the_most_recent_past_one():
    assert parse_when("晚上八点", NOW).start == at(11, 24, 20)  # 20:00 today has not come yet
    assert parse_when("早上", NOW).start == at(11, 25, 6)


def test_result_keeps_the_time_zone_of_now():
    found = parse_when("昨天", NOW)
    assert isinstance(found, TimeRange) and found.start.tzinfo == CST
    naive = parse_when("昨天", NOW.replace(tzinfo=None))
    assert naive.start == datetime(2026, 11, 24)


def test_zero_and_absurd_amounts_give_none():
    assert parse_when("0天前", NOW) is None
    assert parse_when("九千年前", NOW) is None
    assert parse_when("13月5日", NOW) is None


def test_random_time_words_never_raise_and_never_give_an_empty_range():
    import random

    alphabet = list("今昨前大天早上下中午晚凌晨点半分刻周星期礼拜一二三四五六七八九十两百千零〇日号月年个小时钟前后了多几刚才最近这本去"
                    "0123456789:/-., 区路")
    rng = random.Random(7)
    for now in (NOW, datetime(2026, 3, 1, 0, 0, tzinfo=CST), datetime(2024, 2, 29, 23, 50, tzinfo=CST)):
        for _ in range(1500):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 14)))
            found = parse_when(text, now)
            assert found is None or found.start < found.end, (text, now, found)
