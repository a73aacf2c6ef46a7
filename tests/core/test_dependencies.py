"""Dependencies: the graph, cycles and unknown ids refused, blocked-by answers, folding counts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import ConfigError, parse_config
from core.dependencies import BlockTracker, DependencyError, DependencyGraph


def rack() -> DependencyGraph:
    # core-sw <- switch-3 <- plc-0..9 ; gw <- sensor (a second, unrelated tree); plc-9 also behind gw
    edges: dict[str, list[str]] = {"core-sw": [], "switch-3": ["core-sw"], "gw": [], "sensor": ["gw"]}
    for i in range(10):
        edges[f"plc-{i}"] = ["switch-3"]
    edges["plc-9"] = ["switch-3", "gw"]
    return DependencyGraph(edges)


def test_parents_children_ancestors_descendants() -> None:
    g = rack()
    assert g.parents("plc-9") == ("switch-3", "gw")
    assert g.children("switch-3") == tuple(f"plc-{i}" for i in range(10))
    assert g.ancestors("plc-0") == ["switch-3", "core-sw"]
    assert set(g.descendants("core-sw")) == {"switch-3", *(f"plc-{i}" for i in range(10))}
    assert g.descendants("plc-0") == []


def test_blocked_by_is_the_nearest_down_ancestor() -> None:
    g = rack()
    down = {"core-sw", "switch-3"}
    assert g.blocked_by("plc-0", down.__contains__) == "switch-3"
    assert g.blocked_by("switch-3", down.__contains__) == "core-sw"
    assert g.blocked_by("core-sw", down.__contains__) is None
    assert g.blocked_by("plc-0", set().__contains__) is None
    # Its own state does not matter: a down child is still "blocked by", not failed.
    assert g.blocked_by("plc-1", {"plc-1", "switch-3"}.__contains__) == "switch-3"


def test_folded_alert_counts_the_devices_behind_the_root_cause() -> None:
    g = rack()
    down = {"switch-3"}.__contains__
    assert len(g.affected("switch-3", down)) == 10
    both = {"core-sw", "switch-3"}.__contains__
    # With the core switch down as well, the one alert is on core-sw and stands for 11 devices.
    assert g.root_cause("plc-4", both) == "core-sw"
    assert len(g.affected("core-sw", both)) == 11
    assert g.affected("switch-3", both) == []


def test_cycles_and_unknown_ids_are_refused_in_one_line() -> None:
    with pytest.raises(DependencyError, match=r"^dependency cycle: a -> b -> c -> a$"):
        DependencyGraph({"a": ["b"], "b": ["c"], "c": ["a"]})
    with pytest.raises(DependencyError, match="depends on itself"):
        DependencyGraph({"a": ["a"]})
    with pytest.raises(DependencyError, match="unknown service 'zz'"):
        DependencyGraph({"a": ["zz"]})


def _services(entries: list[tuple[str, str]]) -> str:
    return "\n".join(f'[[services]]\nid = "{sid}"\nendpoint = "http://127.0.0.1:9"\n{extra}\n'
                     for sid, extra in entries)


def test_config_refuses_cycles_and_unknown_ids_naming_them() -> None:
    text = _services([("sw", 'depends_on = ["plc"]'), ("plc", 'depends_on = ["sw"]')])
    with pytest.raises(ConfigError) as err:
        parse_config(text, label="rack.toml")
    assert str(err.value) == "rack.toml: services: dependency cycle: sw -> plc -> sw"
    text = _services([("switch-3", ""), ("plc", 'depends_on = ["switch-4"]')])
    with pytest.raises(ConfigError) as err:
        parse_config(text, label="rack.toml")
    assert str(err.value) == ("rack.toml: services[1].depends_on[0]: unknown service 'switch-4' "
                              "(did you mean 'switch-3'?)")
    ok = parse_config(_services([("switch-3", ""), ("plc", 'depends_on = ["switch-3"]')]))
    assert ok.services[1].depends_on == ("switch-3",)
    assert ok.services[0].depends_on == ()


def test_block_tracker_reports_blocked_and_released() -> None:
    tracker = BlockTracker(rack())
    change = tracker.update({"switch-3"}.__contains__)
    assert dict(change.blocked) == {f"plc-{i}": "switch-3" for i in range(10)}
    assert change.released == ()
    assert not tracker.update({"switch-3"}.__contains__)  # nothing new
    change = tracker.update({"core-sw", "switch-3"}.__contains__)
    assert dict(change.blocked) == {"switch-3": "core-sw"}  # the PLCs stay behind their nearest parent
    change = tracker.update(set().__contains__)
    assert set(change.released) == {"switch-3", *(f"plc-{i}" for i in range(10))}
    assert tracker.blocked == {}


# ---------------------------------------------------------------- properties

@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Random acyclic graphs: a service may only depend on services declared before it."""
    n = draw(st.integers(1, 25))
    names = [f"s{i}" for i in range(n)]
    edges: dict[str, list[str]] = {}
    for i, name in enumerate(names):
        edges[name] = draw(st.lists(st.sampled_from(names[:i]), max_size=3)) if i else []
    order = draw(st.permutations(names))
    return {name: edges[name] for name in order}


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_property_blocked_by_is_a_nearest_down_ancestor(edges: dict[str, list[str]], data: st.DataObject) -> None:
    g = DependencyGraph(edges)
    down = set(data.draw(st.lists(st.sampled_from(sorted(edges)), max_size=len(edges))))
    for service in edges:
        parent = g.blocked_by(service, down.__contains__)
        ancestors = g.ancestors(service)
        if parent is None:
            assert not down & set(ancestors)
            continue
        assert parent in down and parent in ancestors
        # No down ancestor is strictly nearer (in hops) than the answer.
        dist = _distances(g, service)
        assert all(dist[a] >= dist[parent] for a in ancestors if a in down)
        root = g.root_cause(service, down.__contains__)
        assert root is not None and g.blocked_by(root, down.__contains__) is None
        assert service in g.affected(root, down.__contains__)


@settings(max_examples=200, deadline=None)
@given(dags(), st.data())
def test_property_an_added_back_edge_is_always_found_as_a_cycle(edges: dict[str, list[str]],
                                                                 data: st.DataObject) -> None:
    g = DependencyGraph(edges)
    candidates = [(s, a) for s in edges for a in g.ancestors(s)]
    if not candidates:
        return
    child, ancestor = data.draw(st.sampled_from(candidates))
    broken = {k: list(v) for k, v in edges.items()}
    broken[ancestor].append(child)  # ancestor now also depends on its own descendant
    with pytest.raises(DependencyError) as err:
        DependencyGraph(broken)
    path = str(err.value).removeprefix("dependency cycle: ").split(" -> ")
    assert path[0] == path[-1] and len(path) >= 3
    for a, b in zip(path, path[1:]):
        assert b in broken[a]  # every step of the named cycle is a real depends_on


@settings(max_examples=100, deadline=None)
@given(dags())
def test_property_parents_and_children_mirror_each_other(edges: dict[str, list[str]]) -> None:
    g = DependencyGraph(edges)
    for s in edges:
        for p in g.parents(s):
            assert s in g.children(p)
        for c in g.children(s):
            assert s in g.parents(c)
        assert s not in g.ancestors(s) and s not in g.descendants(s)


def _distances(g: DependencyGraph, start: str) -> dict[str, int]:
    dist = {start: 0}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for p in g.parents(node):
                if p not in dist:
                    dist[p] = dist[node] + 1
                    nxt.append(p)
        frontier = nxt
    return dist


def test_the_control_room_example_folds_ten_plcs_into_their_switch() -> None:
    from pathlib import Path

    from core.config import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "resources" / "examples" / "control-room.toml")
    g = DependencyGraph({s.id: s.depends_on for s in config.services})
    switch_down = {"switch-3"}.__contains__
    assert len(g.affected("switch-3", switch_down)) == 10
    assert all(g.blocked_by(f"plc-{i}", switch_down) == "switch-3" for i in range(1, 11))
    assert [w.name for w in config.maintenance] == ["nightly PLC backup", "switch firmware"]
    assert [n.escalate_after_minutes for n in config.notify] == [0.0, 15.0]
