"""One Prometheus query for many targets: the shape of a query, the group query, the split.

Targets whose queries are equal once the value of every ``namespace="..."`` matcher
(and ``deployment="..."``, where there is one) is a placeholder share a *shape*. One
query serves them all: the matchers become ``namespace=~"a|b"`` (Prometheus anchors a
regex matcher at both ends, so ``a|b`` matches exactly ``a`` or ``b``), every ``sum``
keeps ``namespace`` (and ``deployment``) in its ``by`` list, and each target takes the
series labelled with its own values.

That is the same answer only if every series of a target's query comes from its own
namespace and each aggregation keeps the label apart, so ``shape`` refuses
(``Unsupported``) what could mix or drop them: another aggregation than ``sum``,
``without``, vector matching clauses (``on``, ``ignoring``, ``group_left``), subqueries,
functions that rewrite labels or make series from nothing, and a selector without its
own ``namespace="..."`` matcher.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from scaler.sources.promql import Token, Unsupported, closing, quoted, string_value, tokenize

NAMESPACE: Final = "namespace"
DEPLOYMENT: Final = "deployment"

# Every PromQL aggregation operator but sum: each computes across the namespaces a
# group query would put together (max, avg...) or keys on other labels (topk...).
_AGGREGATIONS: Final = frozenset(
    [
        "avg",
        "bottomk",
        "count",
        "count_values",
        "group",
        "limitk",
        "limit_ratio",
        "max",
        "min",
        "quantile",
        "stddev",
        "stdvar",
        "topk",
    ]
)
_FUNCTIONS: Final = frozenset(
    [
        "absent",
        "absent_over_time",
        "info",
        "label_join",
        "label_replace",
        "scalar",
        "sort_by_label",
        "vector",
    ]
)
_MATCHING: Final = frozenset(["on", "ignoring", "group_left", "group_right", "without"])
_KEYWORDS: Final = frozenset(["and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "by"])
_REGEX_SPECIAL: Final = frozenset("\\.+*?()|[]{}^$")

Member = tuple[str, str | None]
"""A target's place in a group: its namespace value and its deployment value (or None)."""


@dataclass(frozen=True, slots=True)
class Shape:
    """A groupable query: ``key`` is equal for queries that can share a group query;
    ``member`` is this query's values; the rest says where the rewrite edits."""

    query: str
    key: str
    member: Member
    matchers: tuple[tuple[Token, Token, str], ...]  # (operator, value, label)
    sums: tuple[tuple[int, Sequence[str], bool], ...]  # (offset, labels, has a by list)


def shape(query: str) -> Shape:
    """The shape of ``query``, or ``Unsupported`` saying why it cannot be grouped."""
    tokens = tokenize(query)
    matchers: list[tuple[Token, Token, str]] = []
    sums: list[tuple[int, Sequence[str], bool]] = []
    skip: set[int] = set()
    selectors = 0
    for i, token in enumerate(tokens):
        if i in skip or (token.kind not in ("ident", "range") and token.text != "{"):
            continue
        after = _word(tokens, i + 1)
        if token.text == "{" or after == "{":
            brace = i if token.text == "{" else i + 1
            matchers += _selector(tokens, brace, skip)
            selectors += 1
        elif token.text.lower() == "sum" and after in ("(", "by", "without"):
            sums.append(_sum(tokens, i, skip))
        else:
            _check_word(token, after)
    if not selectors:
        raise Unsupported("no selector with a namespace matcher")
    member = _member(matchers, selectors)
    key = query
    for _, value, label in sorted(matchers, key=lambda m: -m[1].start):
        key = key[: value.start] + f"\0{label}\0" + key[value.end :]
    return Shape(query, key, member, tuple(matchers), tuple(sums))


def _check_word(token: Token, after: str) -> None:
    word = token.text.lower()  # PromQL's keywords and operators ignore case
    if token.kind == "range":
        if ":" in word:
            raise Unsupported(f"the subquery {word!r}")
        return
    if word in _MATCHING:
        raise Unsupported(f"the clause {word!r}")
    if after in ("(", "by", "without") and word in _AGGREGATIONS:
        raise Unsupported(f"the aggregation {word!r} (only sum groups)")
    if after == "(" and word in _FUNCTIONS:
        raise Unsupported(f"the function {word!r}")
    if after != "(" and word not in _KEYWORDS:
        raise Unsupported(f"the selector {word!r} without a namespace matcher")


def _word(tokens: list[Token], index: int) -> str:
    """The token at ``index`` in lower case ("" past the end): keywords ignore case."""
    return tokens[index].text.lower() if index < len(tokens) else ""


def _selector(tokens: list[Token], brace: int, skip: set[int]) -> list[tuple[Token, Token, str]]:
    """The namespace/deployment equality matchers of the selector at ``brace``."""
    end = closing(tokens, brace)
    skip.update(range(brace, end + 1))
    found: list[tuple[Token, Token, str]] = []
    parts = tokens[brace + 1 : end]
    while parts:
        if len(parts) < 3 or parts[2].kind != "string" or (len(parts) > 3 and parts[3].text != ","):
            raise Unsupported(f"a label matcher at offset {parts[0].start}")
        name, op, value = parts[:3]
        label = string_value(name) if name.kind == "string" else name.text
        if label in (NAMESPACE, DEPLOYMENT):
            if op.text != "=":
                raise Unsupported(f"the matcher {label}{op.text}{value.text[:40]}")
            found.append((op, value, label))
        parts = parts[4:]
    if sum(1 for m in found if m[2] == NAMESPACE) != 1:
        raise Unsupported('a selector without exactly one namespace="..." matcher')
    return found


def _sum(tokens: list[Token], at: int, skip: set[int]) -> tuple[int, Sequence[str], bool]:
    """Where ``sum`` at ``at`` gains labels: after ``sum``, or inside its by list."""
    if _word(tokens, at + 1) == "by":
        return _by_list(tokens, at + 2, skip)
    if _word(tokens, at + 1) == "without":
        raise Unsupported("the clause 'without'")
    end = closing(tokens, at + 1)
    if _word(tokens, end + 1) == "by":
        return _by_list(tokens, end + 2, skip)
    if _word(tokens, end + 1) == "without":
        raise Unsupported("the clause 'without'")
    return tokens[at].end, (), False


def _by_list(tokens: list[Token], opening: int, skip: set[int]) -> tuple[int, Sequence[str], bool]:
    if opening >= len(tokens) or tokens[opening].text != "(":
        raise Unsupported("a by clause without its label list")
    end = closing(tokens, opening)
    skip.update(range(opening - 1, end + 1))
    labels = [t.text for t in tokens[opening + 1 : end] if t.text != ","]
    return tokens[end].start, labels, True


def _member(matchers: list[tuple[Token, Token, str]], selectors: int) -> Member:
    values = {
        label: {string_value(v) for _, v, name in matchers if name == label}
        for label in (NAMESPACE, DEPLOYMENT)
    }
    if len(values[NAMESPACE]) != 1:
        raise Unsupported("selectors naming different namespaces")
    deployments = [m for m in matchers if m[2] == DEPLOYMENT]
    if deployments and (len(values[DEPLOYMENT]) != 1 or len(deployments) != selectors):
        raise Unsupported("a deployment matcher missing from a selector, or two deployments")
    deployment = next(iter(values[DEPLOYMENT])) if deployments else None
    return next(iter(values[NAMESPACE])), deployment


def group_query(one: Shape, members: Iterable[Member]) -> str:
    """The query answering for every member of ``one``'s shape, written from ``one``."""
    chosen = list(dict.fromkeys(members))
    regex = {
        NAMESPACE: "|".join(dict.fromkeys(_escape(ns) for ns, _ in chosen)),
        DEPLOYMENT: "|".join(dict.fromkeys(_escape(d or "") for _, d in chosen)),
    }
    grouped = [NAMESPACE] if one.member[1] is None else [NAMESPACE, DEPLOYMENT]
    edits: list[tuple[int, int, str]] = []
    for op, value, label in one.matchers:
        edits.append((op.start, op.end, "=~"))
        edits.append((value.start, value.end, quoted(regex[label])))
    for offset, labels, has_by in one.sums:
        missing = [label for label in grouped if label not in labels]
        if not has_by:
            edits.append((offset, offset, f" by ({', '.join(missing)})"))
        elif missing:
            edits.append((offset, offset, (", " if labels else "") + ", ".join(missing)))
    text = one.query
    for start, end, new in sorted(edits, key=lambda e: -e[0]):
        text = text[:start] + new + text[end:]
    return text


def split(series: Sequence[Mapping[str, Any]], by_deployment: bool) -> dict[Member, list[Any]]:
    """The series of a group answer by member (namespace, deployment or None)."""
    shares: dict[Member, list[Any]] = {}
    for one in series:
        labels = one.get("metric") if isinstance(one, Mapping) else None
        namespace = labels.get(NAMESPACE) if isinstance(labels, Mapping) else None
        deployment = labels.get(DEPLOYMENT) if isinstance(labels, Mapping) else None
        if not isinstance(namespace, str) or (by_deployment and not isinstance(deployment, str)):
            raise Unsupported(f"a series of the group answer without its labels: {labels!r:.80}")
        shares.setdefault((namespace, deployment if by_deployment else None), []).append(one)
    return shares


def _escape(value: str) -> str:
    """``value`` as a literal in an RE2 regex (every special character escaped)."""
    return "".join("\\" + c if c in _REGEX_SPECIAL else c for c in value)
