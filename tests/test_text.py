"""Behaviour of triage.text: normalisation, composition, length checks, PII detection and masking, decoding."""

from __future__ import annotations

import logging

import pytest

from triage.errors import EmptyText, InvalidInput, TextTooLong
from triage.text import (
    PiiMaskingFilter,
    check_length,
    compose,
    decode_bytes,
    despace_cjk,
    find_pii,
    id_checksum_ok,
    luhn_ok,
    mask_name,
    mask_pii,
    normalize,
    split_composed,
)

VALID_ID = "110101199003074514"  # GB 11643 check digit 4
VALID_ID_X = "14030219850612100X"
VALID_CARD = "6222021234567890128"  # Luhn-valid 19 digits


def test_traditional_characters_become_simplified():
    assert normalize("這條馬路的路燈壞了") == "这条马路的路灯坏了"


def test_full_width_digits_letters_and_spaces_become_half_width():
    assert normalize("Ａ３区　１８号") == "A3区 18号"


def test_html_tags_removed_and_script_and_style_bodies_dropped():
    raw = "<p>路灯<b>坏了</b></p><script>alert('x')</script><style>p{color:red}</style>请&nbsp;修理&amp;检查"
    assert normalize(raw) == "路灯坏了 请 修理&检查"


def test_less_than_sign_in_text_is_not_taken_for_a_tag():
    assert normalize("室温<10度，太冷") == "室温<10度,太冷"


def test_zero_width_and_control_characters_are_removed():
    assert normalize("跳\u200b楼\u0007了\ufeff") == "跳楼了"


def test_every_whitespace_run_collapses_to_one_space():
    assert normalize("  第一行\n\n\t第二行\r\n 第三行  ") == "第一行 第二行 第三行"


def test_emoji_survive_normalisation():
    assert normalize("太冷了🥶 👨\u200d👩\u200d👧") == "太冷了🥶 👨\u200d👩\u200d👧"


def test_compose_keeps_exactly_one_newline_between_title_and_content():
    text = compose("標題\n第二行", "內容\n\n更多內容")
    assert text.count("\n") == 1
    assert split_composed(text) == ("标题 第二行", "内容 更多内容")


def test_despace_cjk_joins_split_chinese_but_keeps_other_spaces():
    assert despace_cjk("我要 跳 楼 A3区 18号") == "我要跳楼 A3区 18号"


def test_check_length_refuses_blank_and_too_long_text():
    with pytest.raises(EmptyText):
        check_length("   ", max_chars=10)
    with pytest.raises(TextTooLong) as info:
        check_length("一" * 11, max_chars=10, field="title")
    assert info.value.field == "title"
    assert check_length("路灯坏了", max_chars=10) == "路灯坏了"


def test_id_checksum_accepts_valid_and_rejects_wrong_check_digit():
    assert id_checksum_ok(VALID_ID)
    assert id_checksum_ok(VALID_ID_X.lower())
    assert not id_checksum_ok(VALID_ID[:-1] + "5")


def test_luhn_accepts_valid_card_and_rejects_changed_digit():
    assert luhn_ok(VALID_CARD)
    assert not luhn_ok(VALID_CARD[:-1] + "3")


def test_valid_id_is_masked_keeping_first_six_digits():
    assert mask_pii(f"身份证号{VALID_ID}。") == "身份证号110101************。"
    assert mask_pii(VALID_ID_X) == "140302************"


def test_id_with_bad_check_digit_is_not_masked():
    bad = VALID_ID[:-1] + "5"
    assert find_pii(bad) == []
    assert mask_pii(bad) == bad


def test_bank_card_is_masked_keeping_last_four_only_when_luhn_valid():
    assert mask_pii(f"卡号{VALID_CARD}") == "卡号***************0128"
    assert mask_pii("卡号6222021234567890123") == "卡号6222021234567890123"


def test_mobile_masked_keeping_first_three_and_last_two():
    assert mask_pii("电话13800138000谢谢") == "电话138******00谢谢"


@pytest.mark.parametrize(
    "spoken",
    ["幺三八零零一三八零零零", "一三八 零零一三 八零零零", "138-0013-8000", "+86 138 0013 8000", "１３８００１３８０００"],
)
def test_spoken_spaced_and_prefixed_mobiles_are_found(spoken):
    spans = find_pii(f"我的电话是{spoken}请回电")
    assert [(s.kind, s.digits) for s in spans] == [("phone", "13800138000")]
    assert "138******00" in mask_pii(f"我的电话是{spoken}请回电")


def test_phone_followed_by_a_year_is_still_found():
    assert mask_pii("13800138000 2023年") == "138******00 2023年"


def test_landline_with_area_code_is_masked():
    spans = find_pii("请拨0355-2345678")
    assert [s.kind for s in spans] == ["landline"]
    assert mask_pii("请拨0355-2345678") == "请拨0355-*****78"


def test_short_numbers_and_dates_are_left_alone():
    text = "2022年12月1日停气，住3号楼1806室，交了1302.2元"
    assert find_pii(text) == []


def test_mask_name_keeps_surname_only():
    assert mask_name("我叫张三丰，张三丰反映", "張三丰") == "我叫张**，张**反映"
    assert mask_name("李四来电", None) == "李四来电"


def test_logging_filter_masks_phone_in_a_real_log_record(caplog):
    logger = logging.getLogger("triage.test_text_filter")
    masking = PiiMaskingFilter(names=("王小明",))
    logger.addFilter(masking)
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("petition from %s, phone %s, id %s", "王小明", "13800138000", VALID_ID)
    finally:
        logger.removeFilter(masking)
    message = caplog.records[-1].getMessage()
    assert "13800138000" not in message and VALID_ID not in message and "王小明" not in message
    assert message == "petition from 王**, phone 138******00, id 110101************"


def test_decode_bytes_reads_utf8_and_drops_bom():
    assert decode_bytes("路灯坏了".encode("utf-8")) == "路灯坏了"
    assert decode_bytes(b"\xef\xbb\xbf" + "路灯".encode("utf-8")) == "路灯"


def test_decode_bytes_accepts_chinese_gb18030_text():
    assert decode_bytes("小区暖气不热，请尽快解决。".encode("gb18030")) == "小区暖气不热，请尽快解决。"


def test_decode_bytes_refuses_invalid_bytes_with_a_clear_message():
    with pytest.raises(InvalidInput) as info:
        decode_bytes(b"\xff\xfe\x00binary\x81", field="content")
    assert "not valid UTF-8" in info.value.message
    assert info.value.field == "content"
    with pytest.raises(InvalidInput):
        decode_bytes("小区暖气".encode("gb18030"), allow_gb18030=False)
