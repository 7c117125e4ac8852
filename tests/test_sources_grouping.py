"""The PromQL tokenizer, the shape of a query, the group query and the split (no I/O)."""

from __future__ import annotations

import pytest

from scaler.config import load
from scaler.sources.grouping import group_query, shape, split
from scaler.sources.promql import Unsupported, string_value, tokenize


def _default_queries() -> dict[str, str]:
    target = load(environ={}).targets[0]  # the built-in default
    return {metric.name: metric.query for metric in target.metrics}


def _in(query: str, namespace: str) -> str:
    return query.replace('namespace="chatbot"', f'namespace="{namespace}"')


@pytest.mark.parametrize("metric", ["queue", "cpu"])
def test_the_default_queries_group_across_namespaces(metric: str) -> None:
    query = _default_queries()[metric]
    shapes = [shape(_in(query, ns)) for ns in ("chatbot", "team-a", "team.b")]
    assert len({s.key for s in shapes}) == 1
    assert [s.member for s in shapes] == [("chatbot", None), ("team-a", None), ("team.b", None)]
    grouped = group_query(shapes[0], [s.member for s in shapes])
    assert grouped.count('namespace=~"chatbot|team-a|team\\\\.b"') == query.count("namespace=")
    assert 'namespace="' not in grouped


def test_the_queue_query_sums_by_namespace_on_both_sides() -> None:
    one = shape(_default_queries()["queue"])
    grouped = group_query(one, [("chatbot", None), ("x", None)])
    assert grouped.count("sum by (namespace)(last_over_time(") == 2


def test_the_cpu_query_keeps_pod_and_gains_namespace() -> None:
    one = shape(_default_queries()["cpu"])
    grouped = group_query(one, [("chatbot", None), ("x", None)])
    assert grouped.startswith("sum by (pod, namespace) (rate(")
    assert 'container="ollama"' in grouped


def test_a_deployment_matcher_groups_by_both_labels() -> None:
    one = shape('sum(x{namespace="a", deployment="d"}) by (pod) # a comment {')
    assert one.member == ("a", "d")
    grouped = group_query(one, [("a", "d"), ("b", "e")])
    assert grouped == (
        'sum(x{namespace=~"a|b", deployment=~"d|e"}) by (pod, namespace, deployment) # a comment {'
    )


def test_keywords_in_upper_case_are_keywords() -> None:
    one = shape('SUM(x{namespace="a"}) BY (pod)')
    assert group_query(one, [("a", None), ("b", None)]) == (
        'SUM(x{namespace=~"a|b"}) BY (pod, namespace)'
    )


def test_queries_that_differ_elsewhere_have_different_shapes() -> None:
    assert shape('sum(x{namespace="a"})').key != shape('sum(y{namespace="a"})').key
    assert shape('sum(x{namespace="a"})').key == shape('sum(x{namespace="b"})').key


@pytest.mark.parametrize(
    ("query", "why"),
    [
        pytest.param('max(x{namespace="a"})', "aggregation 'max'", id="max"),
        pytest.param('avg by (pod) (x{namespace="a"})', "aggregation 'avg'", id="avg"),
        pytest.param('MAX(x{namespace="a"})', "aggregation 'max'", id="upper-case-max"),
        pytest.param('SUM(x{namespace="a"}) WITHOUT (pod)', "'without'", id="upper-without"),
        pytest.param('topk(1, x{namespace="a"})', "aggregation 'topk'", id="topk"),
        pytest.param('count(x{namespace="a"})', "aggregation 'count'", id="count"),
        pytest.param('sum without (pod) (x{namespace="a"})', "'without'", id="without"),
        pytest.param('sum(x{namespace="a"}) without (pod)', "'without'", id="without-after"),
        pytest.param('x{namespace="a"} / on(pod) y{namespace="a"}', "'on'", id="on"),
        pytest.param(
            'x{namespace="a"} / ignoring(c) y{namespace="a"}', "'ignoring'", id="ignoring"
        ),
        pytest.param(
            'x{namespace="a"} * on(pod) group_left y{namespace="a"}', "'on'", id="group_left"
        ),
        pytest.param('sum(rate(x{namespace="a"}[5m:1m]))', "subquery", id="subquery"),
        pytest.param('sum(x{namespace="a"}) or vector(0)', "'vector'", id="vector"),
        pytest.param('absent(x{namespace="a"})', "'absent'", id="absent"),
        pytest.param('sum(x{namespace="a"}) / sum(y)', "'y' without a namespace", id="bare"),
        pytest.param('sum(x{job="a"})', "exactly one namespace", id="no-namespace"),
        pytest.param('sum(x{namespace=~"a|b"})', 'namespace=~"a|b"', id="regex-matcher"),
        pytest.param('x{namespace="a"} + y{namespace="b"}', "different namespaces", id="two-ns"),
        pytest.param(
            'x{namespace="a",deployment="d"} + y{namespace="a"}', "deployment", id="half-dep"
        ),
        pytest.param('sum(x{namespace="a"}) + \'unclosed', "cannot read", id="unclosed"),
        pytest.param("1 + 2", "no selector", id="no-selector"),
    ],
)
def test_each_forbidden_construct_falls_back(query: str, why: str) -> None:
    with pytest.raises(Unsupported) as raised:
        shape(query)
    assert why in str(raised.value)


def test_strings_with_braces_and_quotes_are_left_alone() -> None:
    query = r'sum(x{namespace="a", path="{\"}\" by (", job=' + "'}'" + ", re=`a\\b{`})"
    one = shape(query)
    assert one.member == ("a", None)
    grouped = group_query(one, [("a", None), ("b", None)])
    assert grouped == (
        r'sum by (namespace)(x{namespace=~"a|b", path="{\"}\" by (", job='
        + "'}'"
        + ", re=`a\\b{`})"
    )


def test_a_namespace_value_with_quotes_and_regex_characters_is_escaped_twice() -> None:
    one = shape('sum(x{namespace="a.b\\"c"})')
    assert one.member == ('a.b"c', None)
    grouped = group_query(one, [one.member, ("d", None)])
    # The regex a\.b"c|d, then written as a PromQL string: a\\.b\"c|d.
    assert grouped == 'sum by (namespace)(x{namespace=~"a\\\\.b\\"c|d"})'


def test_tokens_keep_durations_recording_rule_names_and_offsets() -> None:
    tokens = tokenize("sum(job:rate5m{namespace='a'}[1h30m] offset 5m) # { not a brace")
    assert [t.text for t in tokens] == [
        "sum", "(", "job:rate5m", "{", "namespace", "=", "'a'", "}", "[1h30m]", "offset", "5m", ")",
    ]  # fmt: skip
    assert string_value(tokens[6]) == "a"


def test_split_takes_each_members_series_and_refuses_a_series_without_its_label() -> None:
    series = [
        {"metric": {"namespace": "a", "pod": "p"}, "value": [1, "1"]},
        {"metric": {"namespace": "b", "pod": "p"}, "value": [1, "2"]},
        {"metric": {"namespace": "a", "pod": "q"}, "value": [1, "3"]},
    ]
    shares = split(series, by_deployment=False)
    assert shares == {("a", None): [series[0], series[2]], ("b", None): [series[1]]}
    with pytest.raises(Unsupported, match="without its labels"):
        split([{"metric": {"pod": "p"}, "value": [1, "1"]}], by_deployment=False)
