"""Department table: loading, validation and rule precedence (keyword > level2 > level1)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import yaml

from triage.departments import DepartmentTable
from triage.errors import DataError
from triage.taxonomy import Taxonomy

TAXONOMY_CSV = """level1,level2,level3
城乡建设,物业管理,物业服务
城乡建设,物业管理,物业收费
城乡建设,市政设施,路灯
环境保护,噪音污染,社会生活噪音
交通运输,公共交通,公交线路
"""

TABLE = {
    "version": 1,
    "city": "示例市",
    "departments": [
        {"id": "housing", "name": "市住房和城乡建设局", "short": "住建", "duties": "房屋、物业"},
        {"id": "urban_mgmt", "name": "市城市管理局", "short": "城管", "duties": "市政设施"},
        {"id": "district_gov", "name": "区人民政府", "short": "区政府", "duties": "属地"},
        {"id": "gas", "name": "市燃气管理中心", "short": "燃气", "duties": "燃气、供暖"},
        {"id": "ecology", "name": "市生态环境局", "short": "生态环境", "duties": "噪音、污染"},
        {"id": "transport", "name": "市交通运输局", "short": "交通", "duties": "公交"},
    ],
    "routing": [
        {"category": "城乡建设", "departments": {"housing": 0.5, "urban_mgmt": 0.3, "district_gov": 0.2}},
        {"category": "城乡建设", "level2": "物业管理", "departments": {"housing": 0.8, "district_gov": 0.2}},
        {"category": "城乡建设", "keywords": ["燃气", "供暖"], "departments": {"gas": 0.7, "housing": 0.3}},
        {"category": "环境保护", "departments": {"ecology": 1.0}},
        {"category": "交通运输", "departments": {"transport": 0.9, "district_gov": 0.1}},
    ],
}


@pytest.fixture
def taxonomy(tmp_path: Path) -> Taxonomy:
    path = tmp_path / "taxonomy.csv"
    path.write_text(TAXONOMY_CSV, encoding="utf-8")
    return Taxonomy.load(path)


def write_table(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "departments.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def table(tmp_path: Path, taxonomy: Taxonomy) -> DepartmentTable:
    return DepartmentTable.load(write_table(tmp_path, TABLE), taxonomy)


def test_level1_rule_applies_when_nothing_more_specific_matches(table):
    ranked = table.rank({"城乡建设": 1.0}, None, "小区门口路灯坏了")
    assert [d for d, _, _ in ranked] == ["housing", "urban_mgmt", "district_gov"]
    assert ranked[0][1] == "市住房和城乡建设局"
    assert ranked[0][2] == pytest.approx(0.5)


def test_level2_rule_overrides_level1_rule(table):
    ranked = table.rank({"城乡建设": 1.0}, {"城乡建设": "物业管理"}, "物业乱收费")
    assert [(d, round(s, 3)) for d, _, s in ranked] == [("housing", 0.8), ("district_gov", 0.2)]


def test_keyword_rule_overrides_level2_and_level1_rules(table):
    ranked = table.rank({"城乡建设": 1.0}, {"城乡建设": "物业管理"}, "小区冬天供暖不热，物业不管")
    assert ranked[0][0] == "gas"
    assert ranked[0][2] == pytest.approx(0.7)


def test_scores_sum_category_probability_times_rule_weight(table):
    ranked = dict((d, s) for d, _, s in table.rank({"城乡建设": 0.6, "交通运输": 0.4}, None, "公交站", k=10))
    assert ranked["housing"] == pytest.approx(0.6 * 0.5)
    assert ranked["transport"] == pytest.approx(0.4 * 0.9)
    assert ranked["district_gov"] == pytest.approx(0.6 * 0.2 + 0.4 * 0.1)
    assert list(ranked)[0] == "transport"


def test_rank_returns_at_most_k_departments(table):
    assert len(table.rank({"城乡建设": 0.5, "交通运输": 0.5}, None, "", k=2)) == 2


def test_table_survives_pickle_and_dict_round_trip(table, taxonomy):
    again = DepartmentTable.from_dict(table.to_dict(), taxonomy=taxonomy)
    probs = {"城乡建设": 0.7, "环境保护": 0.3}
    assert again.rank(probs, None, "供暖") == table.rank(probs, None, "供暖")
    assert pickle.loads(pickle.dumps(table)).rank(probs, None, "") == table.rank(probs, None, "")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t["routing"][0]["departments"].update({"police": 0.1}), "unknown department id 'police'"),
        (lambda t: t["routing"][3].update({"departments": {"ecology": 0.6}}), "weights sum to 0.600"),
        (lambda t: t["routing"][3].update({"departments": {"ecology": -1}}), "must be a number in (0, 1]"),
        (lambda t: t["routing"][3].update({"category": "外星事务"}), "unknown category '外星事务'"),
        (lambda t: t["routing"][1].update({"level2": "火星基地"}), "level2 '火星基地' is not under '城乡建设'"),
        (lambda t: t["departments"].append({"id": "housing", "name": "重复"}), "department id 'housing' appears twice"),
        (lambda t: t.update({"version": 2}), "unsupported version 2"),
        (lambda t: t["routing"].pop(3), "no routing rule for category(ies) 环境保护"),
        (lambda t: t["routing"][2].update({"keywords": "燃气"}), "'keywords' must be a list"),
    ],
)
def test_invalid_table_is_refused_with_a_clear_message(tmp_path, taxonomy, change, message):
    data = yaml.safe_load(yaml.safe_dump(TABLE, allow_unicode=True))
    change(data)
    with pytest.raises(DataError) as caught:
        DepartmentTable.load(write_table(tmp_path, data), taxonomy)
    assert message in str(caught.value)


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        DepartmentTable.load(tmp_path / "nope.yaml")


def test_taxonomy_lists_children_and_round_trips(tmp_path, taxonomy):
    assert taxonomy.level1 == ["城乡建设", "环境保护", "交通运输"]
    assert taxonomy.level2_of("城乡建设") == ["物业管理", "市政设施"]
    assert taxonomy.level3_of("城乡建设", "物业管理") == ["物业服务", "物业收费"]
    assert Taxonomy.load(taxonomy.save(tmp_path / "taxonomy.json")) == taxonomy
    assert pickle.loads(pickle.dumps(taxonomy)).level2_of("环境保护") == ["噪音污染"]
    with pytest.raises(DataError, match="unknown level1"):
        taxonomy.level2_of("外星事务")


def test_taxonomy_csv_without_required_columns_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing column"):
        Taxonomy.load(path)
