"""Cluster keywords and titles: class-based TF-IDF (c-TF-IDF) over jieba words, with petition boilerplate removed.

Each cluster is one "class". A word scores high for a cluster when many of the cluster's reports use it and few
other clusters do:

    score(w, c) = tf(w, c) · log(1 + A / f(w))

where ``tf(w, c)`` is the share of the cluster's reports that contain ``w`` (each report counts a word once, so
one long letter cannot outvote three short calls), ``f(w)`` the number of reports across all held classes
containing ``w``, and ``A`` the average number of distinct words per class. This is the BERTopic c-TF-IDF weighting
with report-level (binary) counts. In a cluster of two or more reports only words said by at least two of them are
candidates: a keyword of a group is something the group shares, not one writer's aside.

The title of a cluster is the member title (the text before the first newline, see `triage.text.compose`) that
best covers the cluster's keywords; a reader recognises a citizen's own headline faster than a bag of words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import jieba

jieba.setLogLevel(60)

# Petition boilerplate (信访套话) and function words: they appear in nearly every report and describe none.
STOPWORDS: frozenset[str] = frozenset(
    """
    反映 希望 相关 相关部门 有关部门 有关 部门 领导 各位 各位领导 您好 你好 尊敬 尊敬的 谢谢 感谢 非常感谢 辛苦 麻烦
    请求 恳请 恳求 请问 希望能 希望尽快 尽快 尽早 及时 早日 解决 处理 落实 关注 重视 给予 予以 帮助 帮忙 一下 问题
    情况 事情 此事 这个 那个 这样 那样 这些 那些 什么 怎么 怎么办 为什么 如何 是否 能否 能不能 可以 可能 应该 需要
    我们 你们 他们 她们 大家 自己 本人 我家 咱们 我们小区 业主们 居民们 老百姓们 人们
    现在 目前 已经 一直 还是 还有 没有 不是 就是 但是 而且 并且 因为 所以 如果 虽然 然后 以及 或者 还要 只是 一个
    一些 一点 每天 每次 今天 昨天 今年 去年 时候 期间 以来 之后 之前 以后 以前 当时 最近 近期 多次 再次 多少 很多
    非常 十分 特别 严重 真的 实在 根本 完全 始终 依然 仍然 还是 一样 不能 不会 不要 不让 不给 不到 无法 只能 必须
    导致 造成 影响 发生 出现 进行 通过 得到 作为 对于 关于 由于 按照 根据 其中 之间 以上 以下 左右 同时 另外
    知道 觉得 认为 看到 听说 说是 表示 告诉 回复 答复 打电话 电话 联系 要求 不管 不知 不知道 不了 起来 出来 下来
    正常 国家 生活 家里 各种 打扰 谢谢您 感谢您 交给 区内 状态 基本 保障 一下子 半天 人民 公司 方面 部分 有的
    反应 反馈 这么 那么 可是 办法 了解 如今 如今已是 开始 为了 自从 能够 总是 不够 一名 不但 之内 那些 哪些 有人
    其实 然而 不但 而是 甚至 一边 哪里 哪儿 这里 那里 这边 那边 务必 许多 几次 几天 一次 两次 一天 天天 每年 每月
    同志 单位 工作 工作人员 有关单位 主管部门 职能部门 上级 领导们 老百姓 百姓 居民 村民 业主 用户 我村 本村
    留言 网友 人民网 信访 投诉 举报 求助 建议 咨询 来电 市民 群众 书记 市长 县长 区长 委书记 省委书记 政府 人民政府
    """.split()
)

_KEEP = re.compile(r"[\u4e00-\u9fffA-Za-z]")  # a word must hold a Han character or a letter
_DIGITS = re.compile(r"^[\d.\-%°]+$")


def tokenize(text: str) -> list[str]:
    """Content words of ``text`` (jieba, precise mode): no stopwords, no one-character words, no bare numbers."""
    words = []
    for word in jieba.lcut(text or ""):
        word = word.strip()
        if len(word) < 2 or word in STOPWORDS or _DIGITS.match(word) or not _KEEP.search(word):
            continue
        words.append(word)
    return words


class ClassTfidf:
    """Incremental c-TF-IDF: per-class report-level word counts and the global counts they add up to.

    Classes are set or replaced whole (`set_class`) and dropped (`drop_class`); the global counts follow, so the
    IDF always reflects the classes currently held. A report's words are tokenised once and cached by report id.
    `keywords` can also score a group that is not a class (``reports=``), against the held classes' IDF.
    """

    def __init__(self) -> None:
        self.class_words_: dict[Hashable, Counter] = {}
        self.class_sizes_: dict[Hashable, int] = {}
        self.word_freq_: Counter = Counter()
        self.total_distinct_ = 0  # Σ over classes of distinct words, for the average A
        self._report_words: dict[Hashable, frozenset[str]] = {}
        self._title_words: dict[Hashable, frozenset[str]] = {}

    def report_words(self, report_id: Hashable, text: str) -> frozenset[str]:
        """The distinct content words of one report (cached)."""
        words = self._report_words.get(report_id)
        if words is None:
            words = frozenset(tokenize(text))
            self._report_words[report_id] = words
        return words

    def _count(self, reports: Iterable[tuple[Hashable, str]]) -> tuple[Counter, int]:
        counts: Counter = Counter()
        size = 0
        for report_id, text in reports:
            counts.update(self.report_words(report_id, text))
            size += 1
        return counts, size

    def set_class(self, class_id: Hashable, reports: Iterable[tuple[Hashable, str]]) -> None:
        """(Re)define a class from its (report id, text) pairs."""
        self.drop_class(class_id)
        counts, size = self._count(reports)
        self.class_words_[class_id] = counts
        self.class_sizes_[class_id] = size
        self.word_freq_.update(counts)
        self.total_distinct_ += len(counts)

    def drop_class(self, class_id: Hashable, *, forget_reports: Iterable[Hashable] = ()) -> None:
        """Remove a class from the global counts; optionally forget its reports' cached words."""
        counts = self.class_words_.pop(class_id, None)
        self.class_sizes_.pop(class_id, None)
        if counts:
            self.total_distinct_ -= len(counts)
            self.word_freq_.subtract(counts)
            for word in counts:
                if self.word_freq_[word] <= 0:
                    del self.word_freq_[word]
        for report_id in forget_reports:
            self._report_words.pop(report_id, None)
            self._title_words.pop(report_id, None)

    def keywords(self, class_id: Hashable, k: int = 8, *,
                 reports: Iterable[tuple[Hashable, str]] | None = None) -> list[tuple[str, float]]:
        """Top ``k`` (word, score) of a held class, or of ``reports`` when given; best first, ties by word."""
        if reports is not None:
            counts, size = self._count(reports)
        else:
            counts, size = self.class_words_.get(class_id), self.class_sizes_.get(class_id, 0)
        if not counts:
            return []
        if size >= 2:  # a keyword of a group is something at least two of its reports say
            counts = Counter({w: n for w, n in counts.items() if n >= 2}) or counts
        n_classes = max(len(self.class_words_), 1)
        avg_words = max(self.total_distinct_ / n_classes, 1.0)
        scored = [(w, (n / size) * math.log(1.0 + avg_words / max(self.word_freq_[w], 1))) for w, n in counts.items()]
        scored.sort(key=lambda ws: (-ws[1], ws[0]))
        return scored[:k]

    def title(self, keywords: Sequence[tuple[str, float]], titles: Sequence[tuple[Hashable, str]],
              max_chars: int = 40, min_chars: int = 5) -> str:
        """The member title covering most keyword weight.

        ``titles`` are (report id, title) pairs; ties go to the earlier one, so pass the most central report first.
        Titles shorter than ``min_chars`` ("取暖问题") are taken only when there is nothing else; with no titles at
        all, the top three keywords joined. Titles over ``max_chars`` are cut with an ellipsis.
        """
        top = dict(keywords)
        best, best_key = "", None
        for order, (report_id, title) in enumerate(titles):
            title = title.strip()
            if not title:
                continue
            words = self._title_words.get(report_id)
            if words is None:
                words = self._title_words[report_id] = frozenset(tokenize(title))
            covered = sum(top.get(w, 0.0) for w in words)
            key = (len(title) < min_chars, -covered, order)
            if best_key is None or key < best_key:
                best, best_key = title, key
        if best_key is None:
            best = "、".join(w for w, _ in list(keywords)[:3])
        return best if len(best) <= max_chars else best[: max_chars - 1] + "…"
