"""Economic network design (heatmap.network.design): the MILP against enumeration on small graphs, the heuristic's
bound never above the optimum, invariants of every design, and the planner's connect choices in a plan."""

import dataclasses
import itertools

import networkx as nx
import numpy as np
import pandas as pd
import pyogrio
import pytest
import yaml
from conftest import BUNDLED_SCENARIO, run_cli

from heatmap.network import design, design_heuristic, design_lns, design_milp, design_reduce, sizing

LINEAR = design.CostCurve.linear(300.0, 2.0)


def problem(edges, consumers, *, sources=(("S", 0, 1e9),), curve=LINEAR):
    """A problem from ``(a, b, length_m)`` edges (``(a, b, length_m, existing_kw, existing_eur_per_m)`` where a pipe
    lies already) and ``(id, node, load_kw, required, prize_eur)`` consumers."""
    rows = [(*e, 0.0, 0.0)[:5] for e in edges]
    e = pd.DataFrame(rows, columns=["a", "b", "length_m", "existing_kw", "existing_eur_per_m"])
    e = e.assign(edge_id=np.arange(len(e)), weight_m=e.length_m)
    c = pd.DataFrame(consumers, columns=["consumer_id", "node", "load_kw", "required", "prize_eur"])
    s = pd.DataFrame(list(sources), columns=["source_id", "node", "capacity_kw"])
    return design.DesignProblem(e, s, c, curve)


def enumerate_optimum(p: design.DesignProblem) -> float:
    """The least objective over every set of edges forming a forest that joins the connected consumers to the
    sources, each tree holding one source (brute force over edge subsets)."""
    e, c, s = p.edges, p.consumers, p.sources
    best = np.inf
    src_nodes = set(s.node)
    cap = dict(zip(s.node, s.capacity_kw, strict=True))
    for r in range(len(e) + 1):
        for subset in itertools.combinations(range(len(e)), r):
            G = nx.Graph()
            G.add_nodes_from(src_nodes)
            for i in subset:
                G.add_edge(e.a[i], e.b[i], i=i)
            if not nx.is_forest(G):
                continue
            ok, cost, prize = True, 0.0, 0.0
            connected = {}
            for comp in nx.connected_components(G):
                roots = comp & src_nodes
                if len(roots) > 1 or (not roots and len(comp) > 1):
                    ok = False
                    break
                if roots:
                    for v in comp:
                        connected[v] = next(iter(roots))
            if not ok:
                continue
            cons_on = c[c.node.isin(connected)]
            if not c[c.required].node.isin(connected).all():
                continue
            # every leaf must be a consumer (else the edge is waste: never optimal, but allowed) — loads:
            load = {}
            for root in src_nodes:
                if root not in G:
                    continue
                T = nx.bfs_tree(G, root)
                for v in reversed(list(nx.topological_sort(T))):
                    own = float(cons_on.load_kw[cons_on.node == v].sum())
                    load[v] = own + sum(load[w] for w in T.successors(v))
                    if v != root:
                        (u,) = T.predecessors(v)
                        i = G.edges[u, v]["i"]
                        cost += edge_cost(p, i, load[v])
                if load.get(root, 0.0) > cap[root] + 1e-9:
                    ok = False
            if not ok:
                continue
            prize = float(cons_on.prize_eur[~cons_on.required].sum())
            best = min(best, cost - prize)
    return best


def edge_cost(p: design.DesignProblem, i: int, load_kw: float) -> float:
    """What edge ``i`` of a problem costs carrying ``load_kw``: on the curve, or where a pipe lies already and carries
    the load, its losses only (the cheaper)."""
    e = p.edges.iloc[i]
    new = float(p.curve.edge_cost_eur(np.array([load_kw]), np.array([e.weight_m]), np.array([e.length_m]))[0])
    if e.existing_kw > 0 and load_kw <= e.existing_kw:
        return min(new, e.length_m * e.existing_eur_per_m)
    return new


def check_invariants(p: design.DesignProblem, d: design.Design) -> None:
    """What must hold for every design: a forest rooted at the sources, joined end to end, loads and costs adding up."""
    e = d.edges
    assert not e.to_node.duplicated().any()  # one edge into every node
    assert not set(e.to_node) & set(p.sources.node)  # nothing flows into a source
    T = nx.DiGraph()
    T.add_edges_from(zip(e.from_node, e.to_node, strict=True))
    assert nx.is_directed_acyclic_graph(T)
    roots = {v for v in T if T.in_degree(v) == 0}
    assert roots <= set(p.sources.node)
    c = p.consumers.set_index("consumer_id")
    on = c.loc[d.connected]
    assert c[c.required.astype(bool)].index.isin(d.connected).all()
    assert set(on.node) <= set(T.nodes)
    # each edge carries the loads of the consumers below it, and some: no pipe ends where no consumer is
    below = {v: nx.descendants(T, v) | {v} for v in T}
    for row in e.itertuples():
        want = on.load_kw[on.node.isin(below[row.to_node])].sum()
        assert row.load_kw == pytest.approx(want, rel=1e-9, abs=1e-9)
    assert (e.load_kw > 0).all()
    # the cost is each edge's on the curve; the objective is cost less the optional prizes connected
    cost = np.array([edge_cost(p, int(i), load) for i, load in zip(e.edge_id, e.load_kw, strict=True)])
    assert e.cost_eur.to_numpy() == pytest.approx(cost)
    assert d.cost_eur == pytest.approx(cost.sum())
    prizes = on.prize_eur[~on.required.astype(bool)].sum()
    assert d.objective_eur == pytest.approx(d.cost_eur - prizes + d.overload_penalty_eur)


def test_leaving_a_consumer_out_is_optimal():
    # A far optional consumer earns less than its 400 m connection costs: left out; a near one pays: connected.
    p = problem(
        [(0, 1, 100.0), (1, 2, 10.0), (1, 3, 400.0)],
        [("near", 2, 50.0, False, 1e6), ("far", 3, 50.0, False, 1e5)],
    )
    assert enumerate_optimum(p) == pytest.approx(100 * (300 + 2 * 50) + 10 * (300 + 100) - 1e6)
    for d in (design_milp.optimal_design(p), design_heuristic.heuristic_design(p)):
        check_invariants(p, d)
        assert d.connected == ["near"] and d.not_economic == ["far"]
        assert d.objective_eur == pytest.approx(enumerate_optimum(p))


def test_a_longer_route_is_cheaper_when_it_carries_less():
    # The Steiner tree (a 100 m trunk to a junction, 100 m on to each of A and B: 300 m) carries both loads on its
    # trunk; two direct lines of 160 m each (320 m in all) carry less load over fewer metres and cost less.
    p = problem(
        [(0, 1, 100.0), (1, 2, 100.0), (1, 3, 100.0), (0, 2, 160.0), (0, 3, 160.0)],
        [("A", 2, 1000.0, True, np.nan), ("B", 3, 1000.0, True, np.nan)],
    )
    steiner = 100 * (300 + 2 * 2000) + 2 * 100 * (300 + 2 * 1000)
    direct = 2 * 160 * (300 + 2 * 1000)
    assert direct < steiner
    assert enumerate_optimum(p) == pytest.approx(direct)
    for d in (design_milp.optimal_design(p), design_heuristic.heuristic_design(p)):
        check_invariants(p, d)
        assert set(d.edges.edge_id) == {3, 4}
        assert d.objective_eur == pytest.approx(direct)


def test_an_existing_pipe_is_reused_where_it_carries_the_load_and_upgraded_where_that_pays():
    # A pipe lies on 0–1 (100 m) carrying up to 50 kW at 10 €/m of losses over the lifetime; 1–2 is 10 m of new
    # route; a new direct line 0–2 is 130 m. At 40 kW the pipe is reused: 100 m × 10 € of losses, no capex. At 100 kW
    # it is too small: upgrading it (a new pipe in its trench at the curve's price) beats the longer new line.
    route = [(0, 1, 100.0, 50.0, 10.0), (1, 2, 10.0), (0, 2, 130.0)]
    reuse = 100 * 10.0 + 10 * (300 + 2 * 40)
    assert reuse < 130 * (300 + 2 * 40)
    upgrade = 100 * (300 + 2 * 100) + 10 * (300 + 2 * 100)
    assert upgrade < 130 * (300 + 2 * 100)
    for load, want in ((40.0, reuse), (100.0, upgrade)):
        p = problem(route, [("A", 2, load, True, np.nan)])
        assert enumerate_optimum(p) == pytest.approx(want)
        for d in (design_milp.optimal_design(p), design_heuristic.heuristic_design(p)):
            check_invariants(p, d)
            assert set(d.edges.edge_id) == {0, 1}
            assert d.objective_eur == pytest.approx(want)
            assert d.bound_eur <= want + 1e-6
    # where the new line is short enough, it beats upgrading; the pipe stays unused
    p = problem([(0, 1, 100.0, 50.0, 10.0), (1, 2, 10.0), (0, 2, 105.0)], [("A", 2, 100.0, True, np.nan)])
    d = design_milp.optimal_design(p)
    assert set(d.edges.edge_id) == {2} and d.objective_eur == pytest.approx(enumerate_optimum(p))


def test_a_source_s_capacity_sends_consumers_to_another():
    # S1 is nearer to both, but carries 100 kW only: the second consumer goes to S2.
    p = problem(
        [(0, 2, 10.0), (0, 3, 10.0), (1, 2, 50.0), (1, 3, 50.0)],
        [("a", 2, 80.0, True, np.nan), ("b", 3, 80.0, True, np.nan)],
        sources=(("S1", 0, 100.0), ("S2", 1, 1000.0)),
    )
    optimum = enumerate_optimum(p)
    d = design_milp.optimal_design(p)
    check_invariants(p, d)
    assert d.objective_eur == pytest.approx(optimum)
    assert sorted(d.edges.from_node) == [0, 1]


def test_too_small_sources_are_overloaded_not_refused():
    # Together the sources carry 150 of the 200 kW required: the design still joins everyone, reports the 50 kW
    # beyond capacity (the plan's source-capacity check names it) and fills the larger source first.
    p = problem(
        [(0, 2, 10.0), (1, 3, 10.0), (2, 3, 10.0)],
        [("a", 2, 100.0, True, np.nan), ("b", 3, 100.0, True, np.nan)],
        sources=(("S1", 0, 50.0), ("S2", 1, 100.0)),
    )
    for d in (design_milp.optimal_design(p), design_heuristic.heuristic_design(p)):
        check_invariants(p, d)
        assert d.connected == ["a", "b"]
        assert d.source_overload_kw == pytest.approx(50.0)
        assert d.bound_eur <= d.objective_eur + 1e-6


def test_an_arc_across_a_bridge_carries_at_most_the_load_beyond_it():
    # Source 0 – 1, a cycle 1–2–3–1, and a dead end 3 – 4 – 5: consumers at 2 (100 kW), 4 (30) and 5 (20); another
    # branch 0 – 6 with a consumer at 6 (40 kW).
    p = problem(
        [(0, 1, 10.0), (1, 2, 10.0), (2, 3, 10.0), (3, 1, 10.0), (3, 4, 10.0), (4, 5, 10.0), (0, 6, 10.0)],
        [("a", 2, 100.0, True, np.nan), ("b", 4, 30.0, True, np.nan), ("c", 5, 20.0, True, np.nan)]
        + [("d", 6, 40.0, True, np.nan)],
    )
    ix = design.index_problem(p)
    tail = np.concatenate([ix.ea, ix.eb])
    head = np.concatenate([ix.eb, ix.ea])
    arcs = list(zip(tail.tolist(), head.tolist(), strict=True))
    bound = dict(zip(arcs, design_milp._arc_flow_bounds(ix, tail, head), strict=True))
    assert bound[(0, 1)] == 150 and bound[(1, 0)] == 0  # the source's bridge carries all, nothing flows back
    assert bound[(3, 4)] == 50 and bound[(4, 5)] == 20 and bound[(5, 4)] == 0 and bound[(4, 3)] == 0
    assert bound[(1, 2)] == bound[(2, 1)] == 150  # inside the cycle: what its bridge carries in


def random_problem(seed: int) -> design.DesignProblem:
    """A connected random graph of 7 nodes and at most 11 edges (a spanning tree plus chords), none to two of them
    existing pipes, consumers on nodes 2–6, half of them optional; one source or two (the first with little
    capacity); linear or catalogue cost."""
    rng = np.random.default_rng(seed)
    n = 7
    tree = nx.random_labeled_tree(n, seed=seed) if hasattr(nx, "random_labeled_tree") else nx.random_tree(n, seed=seed)
    pairs = set(map(tuple, map(sorted, tree.edges)))
    chords = [pr for pr in itertools.combinations(range(n), 2) if pr not in pairs]
    for i in rng.permutation(len(chords))[:4]:
        pairs.add(chords[i])
    edges = [(a, b, float(rng.uniform(20, 200))) for a, b in sorted(pairs)]
    for i in rng.permutation(len(edges))[: seed % 3]:  # pipes that lie there already: reused, or upgraded
        edges[i] = (*edges[i], float(rng.uniform(50, 800)), float(rng.uniform(0, 50)))
    consumers = [
        (f"C{v}", v, float(rng.uniform(10, 500)), bool(rng.random() < 0.5), float(rng.uniform(0, 2e5)))
        for v in range(2, n)
    ]
    sources = (("S", 0, 1e9),) if seed % 2 else (("S", 0, 600.0), ("T", 1, 1e9))
    return problem(edges, consumers, sources=sources, curve=LINEAR if seed % 3 else _catalogue_curve(segments=2))


@pytest.mark.parametrize("solver", design_milp.MIP_SOLVERS)
@pytest.mark.parametrize("seed", range(8))
def test_milp_equals_enumeration_and_the_heuristic_bound_is_below_it(seed, solver):
    p = random_problem(seed)
    optimum = enumerate_optimum(p)
    assert np.isfinite(optimum)
    exact = design_milp.optimal_design(p, mip_rel_gap=1e-9, solver=solver)
    assert exact.status == "optimal"
    check_invariants(p, exact)
    assert exact.objective_eur == pytest.approx(optimum, rel=1e-6, abs=1e-3)
    assert exact.bound_eur <= optimum + 1e-3 * max(1.0, abs(optimum))
    quick = design_heuristic.heuristic_design(p)
    check_invariants(p, quick)
    assert quick.objective_eur >= optimum - 1e-6 * max(1.0, abs(optimum))
    assert quick.bound_eur <= optimum + 1e-6 * max(1.0, abs(optimum))


@pytest.mark.parametrize("seed", range(4))
def test_an_objective_limit_proves_no_cheaper_design_exists(seed):
    # The benchmark's proof (bench_design.py --prove-above): SCIP looks only below a limit. Just below the
    # enumerated optimum it finds nothing ("infeasible"); just above, the optimum.
    p = random_problem(seed)
    optimum = enumerate_optimum(p)
    ix = design.index_problem(p)
    for limit, found in ((optimum - 1e-3 * max(1.0, abs(optimum)), False), (optimum + 1.0, True)):
        lp = design_milp._cut_lp(ix, penalty_eur_per_kw=design.overload_eur_per_kw(ix), time_limit_s=30, cut_time_s=5)
        result = lp.search(30.0, objective_limit_eur=limit)
        assert (result.x is not None) == found and result.status == ("optimal" if found else "infeasible")
        if found:
            assert lp.h.getLp().col_cost_ @ result.x + lp.h.getLp().offset_ == pytest.approx(optimum, abs=1e-3)


@pytest.mark.parametrize("seed", range(4))
def test_cut_set_inequalities_hold_for_every_tree_and_raise_the_lp_bound(seed, monkeypatch):
    # Inequalities on the subtrees of one tree (a Steiner tree, a shortest-path tree) hold for another feasible
    # network (the heuristic's): they cut off fractional builds only. With them the LP bound is at least the plain
    # LP's and still at most what a network costs (below every optimum: the enumeration test).
    p = grid_problem(seed, curve=_catalogue_curve(segments=3))
    ix = design.index_problem(p)
    red = design_reduce.reduce_problem(ix)
    penalty = design.overload_eur_per_kw(ix)
    model = design_milp._model(red.ix, penalty_eur_per_kw=penalty, offset_eur=red.offset_eur)
    best = design_heuristic.heuristic_design(p, bound=False, regions=0)  # (its regions are slow on a grid)
    x = design_milp._start_vector(red, best, model)
    forests = [design_heuristic._steiner_start(red.ix).parent]
    offset = np.zeros(len(red.ix.src_node))
    forests.append(
        design_heuristic._shortest_path_forest(
            red.ix, red.ix.costs.at(np.full(len(red.ix.edge_id), 1.0)), offset
        ).parent
    )
    rows = [r for parent in forests for r in design_milp._cut_rows(red.ix, model, parent, np.zeros(model.col_y.shape))]
    assert rows
    for cols, coef, rhs in rows:
        assert float(coef @ x[cols]) >= rhs - 1e-9

    def relaxation(problem: design.ProblemIndex, start: design.Design | None = None) -> float:
        return design_milp._cut_lp(
            problem, penalty_eur_per_kw=penalty, time_limit_s=60, cut_time_s=60, start=start
        ).value

    with_cuts = relaxation(red.ix)
    started = relaxation(ix, start=best)  # the heuristic's subtrees first (on the problem as given: reduced inside)
    monkeypatch.setattr(design_milp, "CUT_ROUNDS", 0)
    plain = relaxation(red.ix)
    for bound in (with_cuts, started):
        assert plain <= bound + 1e-6 * abs(plain) and bound <= best.objective_eur * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_cut_set_rows_found_at_once_are_those_of_each_subtree_in_turn(seed):
    # The rows come from all subtrees at once (prefix sums, arcs climbed level by level); subtree by subtree, with a
    # mask of its nodes, the same rows in the same order must come out.
    p = grid_problem(seed, curve=_catalogue_curve(segments=3))
    red = design_reduce.reduce_problem(design.index_problem(p))
    ix = red.ix
    model = design_milp._model(ix, penalty_eur_per_kw=design.overload_eur_per_kw(ix), offset_eur=0.0)
    parent = design_heuristic._steiner_start(ix).parent
    y = np.random.default_rng(seed).uniform(0, 0.01, model.col_y.shape)  # some rows held, most broken
    upper = np.asarray(model.lp.col_upper_)[model.col_f]
    ends = np.unique(ix.costs.upper_kw[np.isfinite(ix.costs.upper_kw) & (ix.costs.upper_kw > 0)])
    demand = np.zeros(ix.n)
    np.add.at(demand, ix.con_node[ix.reach & ix.con_required], ix.con_load[ix.reach & ix.con_required])
    tin, tout = design.euler_tour(parent)
    expected = []
    for v in np.flatnonzero(parent >= 0):
        inside = (tin >= tin[v]) & (tin < tout[v])
        d = demand[inside].sum()
        if d <= 0 or inside[ix.src_node].any():
            continue
        into = np.flatnonzero(~inside[model.tail] & inside[model.head])
        for lam in ends:
            r = d / lam - np.floor(d / lam)
            if r < 1e-6:
                continue
            coef = design_milp._mir(upper[into] / lam, r)
            if (coef * y[into]).sum() < np.ceil(d / lam) - 1e-6:
                keep = coef.ravel() > 1e-12
                expected.append((model.col_y[into].ravel()[keep], coef.ravel()[keep], np.ceil(d / lam)))
    found = design_milp._cut_rows(ix, model, parent, y)
    assert len(expected) > 10 and len(found) == len(expected)
    for (c1, v1, r1), (c2, v2, r2) in zip(found, expected, strict=True):
        assert np.array_equal(c1, c2) and np.allclose(v1, v2) and r1 == r2


@pytest.mark.parametrize("solver", design_milp.MIP_SOLVERS)
@pytest.mark.parametrize("seed", range(8))
def test_a_short_branch_and_cut_raises_the_lp_bound_to_the_optimum(seed, solver):
    # After the LP relaxation, a branch and cut (mip_time_s; HiGHS's or SCIP's) gives a bound at least the LP's and
    # at most the optimum (enumeration); these small problems it solves, so the bound is the optimum (the LP's is
    # below it on seven of the eight).
    p = random_problem(seed)
    ix = design.index_problem(p)
    start = design_heuristic.heuristic_design(p, bound=False)
    lp = design_milp.lp_bound(ix, time_limit_s=60, start=start)
    both = design_milp.lp_bound(ix, time_limit_s=60, start=start, mip_time_s=10, mip_solver=solver)
    optimum = enumerate_optimum(p)
    tol = 1e-6 * max(1.0, abs(optimum))
    assert lp.value_eur - tol <= both.value_eur <= optimum + tol
    assert both.value_eur == pytest.approx(optimum, rel=1e-6)
    assert both.relaxation == ("MILP" if both.value_eur > lp.value_eur + tol else lp.relaxation)


@pytest.mark.parametrize("seed", range(8))
def test_the_line_under_the_curve_is_under_it_and_its_relaxation_a_weaker_bound(seed):
    p = random_problem(seed)
    rng = np.random.default_rng(seed)
    top = float(p.consumers.load_kw.sum())
    existing = rng.uniform(size=len(p.edges)) < 0.3  # some edges with a pipe already, of a random capacity
    costs = p.curve.on_edges(
        p.edges.weight_m.to_numpy(),
        p.edges.length_m.to_numpy(),
        existing_kw=np.where(existing, rng.uniform(1, top, len(p.edges)), 0.0),
        existing_eur_per_m=np.full(len(p.edges), 3.0),
    )
    line = costs.line_below(top)
    assert line.segments == 1
    for load in np.concatenate([rng.uniform(0, top, 50), [1e-6, top]]):
        loads = np.full(len(p.edges), load)
        assert (line.at(loads) <= costs.at(loads) + 1e-9 * np.maximum(1.0, costs.at(loads))).all()
    ix = design.index_problem(p)
    found = design_milp.lp_bound(ix, time_limit_s=60)
    weaker = design_milp._cut_lp(
        dataclasses.replace(ix, costs=ix.costs.line_below(top)),
        penalty_eur_per_kw=design.overload_eur_per_kw(ix),
        time_limit_s=60,
        cut_time_s=60,
    ).value
    started = design_milp.lp_bound(ix, time_limit_s=60, start=design_heuristic.heuristic_design(p, bound=False))
    tol = 1e-6 * max(1.0, abs(found.value_eur))
    assert weaker <= found.value_eur + tol
    optimum = enumerate_optimum(p)
    assert found.value_eur <= optimum + tol and started.value_eur <= optimum + tol
    assert found.relaxation in ("cost curve", "line under the cost curve")


def street_problem(seed: int) -> design.DesignProblem:
    """Streets as a planner's graph has them: a block of 4 corners and 5 streets, 2 of them split by a node of their
    own (11, 13), a dead end, 3 consumers on service connections (at 1, 11 and 2; the last optional), a consumer on
    a corner."""
    rng = np.random.default_rng(seed)
    streets = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]
    edges = []
    for i, (a, b) in enumerate(streets):
        if i in (1, 3):  # split by a node of its own
            mid = 10 + i
            edges += [(a, mid, float(rng.uniform(20, 120))), (mid, b, float(rng.uniform(20, 120)))]
        else:
            edges.append((a, b, float(rng.uniform(20, 200))))
    edges.append((2, 20, float(rng.uniform(20, 80))))  # a dead end
    consumers = [("K3", 3, float(rng.uniform(10, 300)), True, np.nan)]
    for j, at in enumerate((1, 11, 2)):
        node = 30 + j
        edges.append((at, node, float(rng.uniform(5, 30))))
        consumers.append((f"S{j}", node, float(rng.uniform(10, 300)), j != 2, float(rng.uniform(0, 1e5))))
    curve = LINEAR if seed % 2 else _catalogue_curve(segments=2)
    return problem(edges, consumers, curve=curve)


@pytest.mark.parametrize("seed", range(4))
def test_the_reduced_problem_has_the_same_optimum_and_a_bound_at_least_as_tight(seed):
    p = street_problem(seed)
    ix = design.index_problem(p)
    red = design_reduce.reduce_problem(ix)
    # the two required service connections fixed (11 becomes a terminal), the dead end gone, the street split by 13
    # joined: 6 street edges and the optional consumer's service connection
    assert red.served.sum() == 2 and len(red.ix.edge_id) == 7 and 13 not in red.ix.node_ids
    # every original edge is in one chain, a fixed service connection or the dead end, which is dropped
    in_chain = np.concatenate(red.chain_edges)
    dead = int(np.flatnonzero(ix.node_ids[np.maximum(ix.ea, ix.eb)] == 20)[0])
    assert len(in_chain) == len(set(in_chain.tolist()))
    assert sorted([*in_chain.tolist(), *red.service_edge[red.served].tolist(), dead]) == list(range(len(ix.edge_id)))
    c = p.consumers.set_index("consumer_id")
    fixed = [
        edge_cost(p, int(ix.edge_id[e]), float(c.load_kw.iloc[i])) for i, e in enumerate(red.service_edge) if e >= 0
    ]
    assert red.offset_eur == pytest.approx(sum(fixed))
    optimum = enumerate_optimum(p)
    exact = design_milp.optimal_design(p, mip_rel_gap=1e-9)
    check_invariants(p, exact)
    assert exact.objective_eur == pytest.approx(optimum, rel=1e-6, abs=1e-3)
    penalty = design.overload_eur_per_kw(ix)
    whole = design_milp._highs(
        design_milp._model(ix, penalty_eur_per_kw=penalty, offset_eur=0.0), time_limit_s=60, mip_rel_gap=0
    )
    whole.run()
    reduced_bound = design_milp.lp_bound(ix, time_limit_s=60).value_eur
    assert whole.getInfo().objective_function_value - 1e-6 <= reduced_bound <= optimum + 1e-6 * abs(optimum)


def _catalogue_curve(segments: int) -> design.CostCurve:
    cat = pd.DataFrame(
        {
            "d_inner_m": [0.0372, 0.0545, 0.0825, 0.1325],
            "d_outer_m": [0.0424, 0.0603, 0.0889, 0.1397],
            "u_w_per_mk": [0.157, 0.201, 0.238, 0.288],
            "cost_eur_per_m": [728.0, 778.0, 869.0, 1027.0],
        },
        index=pd.Index([32, 50, 80, 125], name="dn"),
    )
    return design.catalogue_curve(
        design.dn_costs(
            cat,
            water=sizing.Water(971.8, 3.6e-7, 4190.0),
            t_supply_c=85.0,
            t_return_c=45.0,
            t_ground_c=8.0,
            max_velocity_m_per_s=1.5,
            max_pressure_gradient_pa_per_m=200.0,
            roughness_m=4.5e-5,
            heat_value_eur_per_mwh=30.0,
            annuity=0.051,
        ),
        segments=segments,
        label="test",
    )


def test_catalogue_curve_never_prices_a_load_above_its_dn_step():
    for segments in (1, 2, 4):
        curve = _catalogue_curve(segments)
        cap = sizing.dn_capacity_kw(
            pd.DataFrame({"d_inner_m": [0.0372, 0.0545, 0.0825, 0.1325]}),
            water=sizing.Water(971.8, 3.6e-7, 4190.0),
            delta_t_k=40.0,
            max_velocity_m_per_s=1.5,
            max_pressure_gradient_pa_per_m=200.0,
            roughness_m=4.5e-5,
        )
        step_capex = np.array([728.0, 778.0, 869.0, 1027.0])
        loads = np.linspace(1.0, cap[-1], 400)
        dn = np.searchsorted(cap, loads)
        one = np.ones_like(loads)
        capex_only = design.CostCurve(
            curve.lower_kw,
            curve.upper_kw,
            curve.capex_eur_per_m,
            curve.capex_eur_per_kw_m,
            0 * curve.lower_kw,
            0 * curve.lower_kw,
        )
        assert (capex_only.edge_cost_eur(loads, one, one) <= step_capex[dn] + 1e-9).all()
    # one segment per DN: the steps themselves
    exact = _catalogue_curve(4)
    capex_only = design.CostCurve(
        exact.lower_kw,
        exact.upper_kw,
        exact.capex_eur_per_m,
        exact.capex_eur_per_kw_m,
        0 * exact.lower_kw,
        0 * exact.lower_kw,
    )
    assert capex_only.edge_cost_eur(loads, one, one) == pytest.approx(step_capex[dn])


def test_pumping_per_metre_is_the_friction_power_of_both_pipes_at_the_dn_s_capacity():
    # DN50 at 85/45 °C: its largest flow within 1.5 m/s and 200 Pa/m; the friction gradient there by Colebrook
    # (iterated here by hand), supply and return, 2000 h a year at 60 €/MWh through pumps of η 0.7, over 30 years
    # at 3 %: capitalised € per metre of route.
    cat = pd.DataFrame(
        {"d_inner_m": [0.0545], "d_outer_m": [0.0603], "u_w_per_mk": [0.201], "cost_eur_per_m": [778.0]},
        index=pd.Index([50], name="dn"),
    )
    water = sizing.Water(971.8, 3.6e-7, 4190.0)
    af = 0.03 / (1 - 1.03**-30)
    args = dict(
        water=water, t_supply_c=85.0, t_return_c=45.0, t_ground_c=8.0, max_velocity_m_per_s=1.5,
        max_pressure_gradient_pa_per_m=200.0, roughness_m=4.5e-5, heat_value_eur_per_mwh=30.0, annuity=af,
    )  # fmt: skip
    dns = design.dn_costs(cat, **args, pumping=design.Pumping(60.0, 0.7, 2000.0))
    mdot = dns.capacity_kw.iloc[0] * 1000 / (4190.0 * 40.0)
    d = 0.0545
    v = mdot / (971.8 * np.pi * d**2 / 4)
    re = v * d / 3.6e-7
    lam = 0.02
    for _ in range(100):
        lam = (-2 * np.log10(4.5e-5 / d / 3.7 + 2.51 / (re * np.sqrt(lam)))) ** -2
    r = lam / d * 971.8 * v**2 / 2
    assert r <= 200.0 + 1e-6 and v <= 1.5 + 1e-9
    want = 2 * (mdot / 971.8) * r / 0.7 * 2000 / 1e6 * 60.0 / af
    assert dns.pump_eur_per_m.iloc[0] == pytest.approx(want, rel=1e-6)
    assert dns.running_eur_per_m.iloc[0] == pytest.approx(dns.loss_eur_per_m.iloc[0] + want)
    unpriced = design.dn_costs(cat, **args)
    assert unpriced.pump_eur_per_m.iloc[0] == 0 and unpriced.loss_eur_per_m.iloc[0] == dns.loss_eur_per_m.iloc[0]


def test_dn_capacity_meets_the_limits_exactly():
    # At each DN's capacity one limit holds with equality (Darcy–Weisbach with Colebrook), the other within.
    water = sizing.Water(971.8, 3.6e-7, 4190.0)
    d = np.array([0.0372, 0.1325, 0.3127])
    cap = sizing.dn_capacity_kw(
        pd.DataFrame({"d_inner_m": d}),
        water=water,
        delta_t_k=40.0,
        max_velocity_m_per_s=1.5,
        max_pressure_gradient_pa_per_m=200.0,
        roughness_m=4.5e-5,
    )
    mdot = cap * 1000 / (water.cp_j_per_kgk * 40.0)
    v, r = sizing.pressure_gradient_pa_per_m(
        mdot, d, rho=water.rho_kg_per_m3, nu_m2_per_s=water.nu_m2_per_s, roughness_m=4.5e-5
    )
    assert (v <= 1.5 + 1e-6).all() and (r <= 200 + 1e-6).all()
    assert np.maximum(v / 1.5, r / 200) == pytest.approx(1.0, rel=1e-6)


# ----------------------------------------------------------------------------------------------------------------
# In a plan


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    from heatmap.io import synthetic

    folder = tmp_path_factory.mktemp("design_town")
    synthetic.write_synthetic_scenario(synthetic.synthetic_town(120, seed=5), folder)
    return folder


def scenario(town, tmp_path, *, design_section, connect=None):
    import geopandas as gpd

    data = yaml.safe_load((town / "scenario.yaml").read_text())
    for section in ("streets", "sources", "consumers"):
        data[section]["path"] = str(town / data[section]["path"])
    if connect is not None:
        cons = gpd.read_file(town / "consumers.gpkg")
        cons["connect"] = cons.id.map(connect).fillna("")
        cons.to_file(tmp_path / "consumers.gpkg", engine="pyogrio")
        data["consumers"]["path"] = str(tmp_path / "consumers.gpkg")
    data["design"] = design_section
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_planner_choices_in_a_plan(town, tmp_path):
    import json

    import geopandas as gpd

    ids = gpd.read_file(town / "consumers.gpkg").id.tolist()
    choice = {ids[0]: "excluded", ids[1]: "optional", ids[2]: "optional"}
    path = scenario(
        town, tmp_path, design_section={"method": "heuristic", "heat_margin_eur_per_mwh": 0.0}, connect=choice
    )
    proc = run_cli("plan", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["excluded_consumers"]["excluded"] == [ids[0]]
    # an optional consumer that earns nothing is never worth its pipe
    assert sorted(summary["excluded_consumers"]["not_economic"]) == sorted([ids[1], ids[2]])
    d = summary["network_design"]
    assert d["method"] == "heuristic" and d["consumers_optional"] == 2 and d["optional_connected"] == 0
    assert d["bound_eur"] <= d["objective_eur"] + 1e-6
    layer = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="consumers").set_index("consumer_id")
    assert ids[0] not in layer.index  # left out before planning, as below the minimum demand
    assert not layer.connected[[ids[1], ids[2]]].any()
    assert layer.connected.drop([ids[1], ids[2]]).all()
    # the gap in money beside the share (an NPV near 0 makes the share large)
    assert d["gap_eur"] == pytest.approx(d["objective_eur"] - d["bound_eur"])
    gap = f"{100 * d['gap']:.2f} %, {d['gap_eur'] / 1e6:,.2f} M€ above its bound"
    assert f"(heuristic design, {gap}" in proc.stdout


def test_a_wrong_connect_value_is_refused(town, tmp_path):
    import geopandas as gpd

    ids = gpd.read_file(town / "consumers.gpkg").id.tolist()
    path = scenario(town, tmp_path, design_section={"method": "heuristic"}, connect={ids[3]: "maybe"})
    proc = run_cli("plan", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert ids[3] in proc.stderr and "'connect' must be one of required, optional, excluded" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_linear_cost_needs_its_prices(town, tmp_path):
    path = scenario(town, tmp_path, design_section={"cost": "linear", "trench_eur_per_m": 300})
    proc = run_cli("plan", str(path), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2 and "design.pipe_eur_per_kw_m" in proc.stderr


def test_optimal_plan_proves_its_optimum_and_the_heuristic_its_bound(town, tmp_path):
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    linear = {"cost": "linear", "trench_eur_per_m": 300.0, "pipe_eur_per_kw_m": 2.0}
    sections = {
        "heuristic": {"method": "heuristic"},
        "optimal": {"method": "optimal"},
        "highs": {"method": "optimal", "mip_solver": "highs"},
    }
    plans = {
        name: plan_from_scenario(scenario_from_file(scenario(town, tmp_path / name, design_section={**s, **linear})))
        for name, s in sections.items()
        if (tmp_path / name).mkdir() is None
    }
    opt = plans["optimal"].design
    assert opt["status"] == "optimal" and opt["gap"] <= 0.005
    # HiGHS's branch and cut proves an optimum too, each within the other's gap; the summary names the solver
    highs = plans["highs"].design
    assert highs["status"] == "optimal" and highs["gap"] <= 0.005
    assert highs["objective_eur"] >= opt["bound_eur"] * (1 - 1e-9)
    assert opt["objective_eur"] >= highs["bound_eur"] * (1 - 1e-9)
    for name, solver in (("optimal", "scip"), ("highs", "highs")):
        used = {r["key"]: r["value"] for r in plans[name].scenario.assumptions()}
        assert used["design.mip_solver"] == solver
    assert plans["heuristic"].design["objective_eur"] >= opt["objective_eur"] - 1e-6
    assert plans["heuristic"].design["bound_eur"] <= opt["objective_eur"] * (1 + 1e-9)
    # the heuristic's bound, computed beside the plan, is in its summary with its gap and time
    h = plans["heuristic"].design
    assert np.isfinite(h["bound_eur"]) and "bound" in h["time_s"]
    assert h["gap"] == pytest.approx(max(0.0, (h["objective_eur"] - h["bound_eur"]) / abs(h["objective_eur"])))
    assert h["bound_from"] == "LP relaxation, cost curve" and opt["bound_from"] in ("MILP", h["bound_from"])
    for plan in plans.values():
        assert plan.ok, plan.violations
        assert plan.consumers.connected.all()
        assert route_cost_from_pipes(plan, 300.0, 2.0) == pytest.approx(plan.design["pipe_cost_eur"], rel=1e-9)


def test_a_branch_and_cut_beside_the_plan_raises_its_bound(town, tmp_path):
    # design.bound_mip_time_s: after the LP relaxation a branch and cut (SCIP's) raises the heuristic plan's bound;
    # the plan itself is the same
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    found = {}
    for seconds in (0.0, 10.0):
        (tmp_path / str(seconds)).mkdir()
        path = scenario(town, tmp_path / str(seconds), design_section={"bound_mip_time_s": seconds})
        found[seconds] = plan_from_scenario(scenario_from_file(path)).design
    lp, mip = found[0.0], found[10.0]
    assert lp["bound_from"] == "LP relaxation, cost curve" and mip["bound_from"] == "MILP"
    assert lp["bound_eur"] < mip["bound_eur"] <= mip["objective_eur"] * (1 + 1e-9)
    assert mip["objective_eur"] == lp["objective_eur"] and mip["gap"] < lp["gap"]


def test_the_bound_is_not_computed_above_its_size_and_the_summary_says_why(town, tmp_path):
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    plan = plan_from_scenario(scenario_from_file(scenario(town, tmp_path, design_section={"bound_max_edges": 10})))
    d = plan.design
    assert not np.isfinite(d["bound_eur"]) and not np.isfinite(d["gap"]) and "bound" not in d["time_s"]
    assert d["bound_from"].startswith("none: ") and "more than design.bound_max_edges 10" in d["bound_from"]
    assert plan.ok and plan.consumers.connected.all()


def route_cost_from_pipes(plan, trench_eur_per_m, pipe_eur_per_kw_m):
    """The linear route cost recomputed from the written supply pipes alone: each pipe carries the diversified peak
    of the connected consumers whose service pipe lies downstream of it (drawn from_node → to_node)."""
    supply = plan.pipes[plan.pipes.circuit == "supply"]
    T = nx.DiGraph()
    T.add_edges_from(zip(supply.from_node, supply.to_node, strict=True))
    c = plan.consumers[plan.consumers.connected]
    factor = float(sizing.simultaneity_factor(len(c), plan.scenario.network.simultaneity))
    load_at = dict(zip(supply.to_node[supply.consumer_id.notna()], supply.consumer_id.dropna(), strict=True))
    peak = c.set_index("consumer_id").peak_load_kw * factor
    total = 0.0
    for row in supply.itertuples():
        below = nx.descendants(T, row.to_node) | {row.to_node}
        load = sum(peak[load_at[v]] for v in below if v in load_at)
        total += row.length_m * row.cost_factor * (trench_eur_per_m + pipe_eur_per_kw_m * load)
    return total


def test_streets_from_a_line_layer_plan_like_the_osm_streets(bundled_plan, tmp_path):
    # A municipality's street centre lines: the bundled plan's street layer written as a GeoPackage (EPSG:3067), the
    # plan's consumers as a file; planned again from those, it reaches the same consumers along routes of about the
    # same length (measured: 20.53 km against 20.49 km, 439 segments against 440; with the road tunnels among the
    # streets, crossed by streets above them and noded there, it was 508 against 446).
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    bundled_plan.streets[["name", "geometry"]].to_file(tmp_path / "centre_lines.gpkg", engine="pyogrio")
    c = bundled_plan.consumers
    c[["consumer_id", "annual_demand_mwh", "peak_load_kw", "geometry"]].rename(columns={"consumer_id": "id"}).to_file(
        tmp_path / "buildings.gpkg", engine="pyogrio"
    )
    data = yaml.safe_load(BUNDLED_SCENARIO.read_text())
    data["streets"] = {"source": "lines", "path": str(tmp_path / "centre_lines.gpkg"), "max_service_length_m": 150}
    data["sources"]["path"] = str(BUNDLED_SCENARIO.parent / data["sources"]["path"])
    data["consumers"] = {"path": str(tmp_path / "buildings.gpkg")}
    (tmp_path / "lines.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    plan = plan_from_scenario(scenario_from_file(tmp_path / "lines.yaml"))
    assert plan.ok, plan.violations
    assert set(plan.consumers.consumer_id[plan.consumers.connected]) == set(c.consumer_id[c.connected])
    # crossings in the lines (bridges over streets too) become junctions, two segments between the same ends one: about
    # as many segments, routes of about the length
    assert len(plan.streets) == pytest.approx(len(bundled_plan.streets), rel=0.05)
    assert plan.figures["route_length_m"] == pytest.approx(bundled_plan.figures["route_length_m"], rel=0.10)


def test_drawn_lines_say_whether_the_plan_used_them_and_forbidden_streets_are_avoided(bundled_plan, tmp_path):
    # One layer drawn in QGIS: a street the bundled route runs along marked forbidden, a line off by itself and a
    # line through a no-go area. The new plan keeps off the forbidden street and says what became of each line.
    import json

    import geopandas as gpd
    from shapely.geometry import LineString, box

    supply = bundled_plan.pipes[(bundled_plan.pipes.circuit == "supply") & (bundled_plan.pipes.kind == "street")]
    street = supply.loc[supply.length_m.idxmax()]  # the longest street pipe of the bundled route
    x0, y0, x1, y1 = bundled_plan.streets.total_bounds
    away = LineString([(x0 + 5, y1 - 5), (x0 + 60, y1 - 5)])
    through = LineString([(x1 - 80, y0 + 10), (x1 - 10, y0 + 10)])
    gpd.GeoDataFrame(
        {"status": ["forbidden", "", "candidate"], "surface": ["street", "open_terrain", "open_terrain"]},
        geometry=[street.geometry, away, through],
        crs=bundled_plan.crs,
    ).to_file(tmp_path / "drawn.gpkg", engine="pyogrio")
    gpd.GeoDataFrame(geometry=[box(x1 - 60, y0, x1 - 40, y0 + 20)], crs=bundled_plan.crs).to_file(
        tmp_path / "no_go.gpkg", engine="pyogrio"
    )
    data = yaml.safe_load(BUNDLED_SCENARIO.read_text())
    data["streets"]["path"] = str((BUNDLED_SCENARIO.parent / data["streets"]["path"]).resolve())
    data["sources"]["path"] = str(BUNDLED_SCENARIO.parent / data["sources"]["path"])
    data["links"] = {"path": str(tmp_path / "drawn.gpkg"), "no_go_path": str(tmp_path / "no_go.gpkg")}
    (tmp_path / "drawn.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    proc = run_cli("plan", str(tmp_path / "drawn.yaml"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    status = {d["feature"]: d["status"] for d in summary["drawn_links"]}
    assert status == {1: "forbidden", 2: "not used", 3: "left out"}
    assert all(d["why"] for d in summary["drawn_links"])
    assert summary["drawn_links"][1]["why"].startswith("it does not join the streets")  # drawn in a corner, alone
    assert "drawn lines 3: forbidden 1, not used 1, left out 1" in proc.stdout
    routes = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="streets")
    assert set(routes.drawn_status[routes.link_feature == 2]) == {"not used"}  # the map's popup says so too
    pipes = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="pipes")
    along = pipes.geometry.intersection(street.geometry.buffer(1.0)).length
    assert along.max() < 0.5 * street.geometry.length  # no pipe runs along the forbidden street


def test_service_pipes_keep_out_of_no_go_areas_and_a_walled_in_building_is_listed(bundled_plan, tmp_path):
    # A no-go polygon drawn across one building's service pipe, and a thin wall drawn round a second building: the
    # first joins a street its pipe reaches round the polygon (or is listed), the second is listed, with the reason, in
    # summary.json and the left_out layer. Before, service pipes ran through no-go areas.
    import json

    import geopandas as gpd
    import shapely

    service = bundled_plan.pipes[(bundled_plan.pipes.circuit == "supply") & (bundled_plan.pipes.kind == "service")]
    service = service[service.length_m > 15].sort_values("length_m")
    crossed, walled = service.iloc[0], service.iloc[len(service) // 2]
    footprint = bundled_plan.consumers.set_index("consumer_id").geometry[walled.consumer_id]
    zones = [
        crossed.geometry.interpolate(0.5, normalized=True).buffer(2.0),
        footprint.buffer(5.0).difference(footprint.buffer(1.0)),
    ]
    gpd.GeoDataFrame(geometry=zones, crs=bundled_plan.crs).to_file(tmp_path / "no_go.gpkg", engine="pyogrio")
    data = yaml.safe_load(BUNDLED_SCENARIO.read_text())
    data["streets"]["path"] = str((BUNDLED_SCENARIO.parent / data["streets"]["path"]).resolve())
    data["sources"]["path"] = str(BUNDLED_SCENARIO.parent / data["sources"]["path"])
    data["links"] = {"no_go_path": str(tmp_path / "no_go.gpkg")}
    (tmp_path / "no_go.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    proc = run_cli("plan", str(tmp_path / "no_go.yaml"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    pipes = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="pipes")
    for zone in zones:
        inner = zone.buffer(-1e-6)
        assert not shapely.intersects(pipes.geometry.values, inner).any()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    listed = summary["excluded_consumers"]["service_across_no_go"]
    assert walled.consumer_id in listed
    consumers = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="consumers").set_index("consumer_id")
    assert consumers.connected[crossed.consumer_id] or crossed.consumer_id in listed
    left = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="left_out").set_index("consumer_id")
    assert left.reason[walled.consumer_id] == "no_go" and "no-go area" in left.why[walled.consumer_id]
    assert "service across no go" in proc.stdout
    # the no-go areas are in the GeoPackage and on the map; no drawn lines, so no layer of them
    areas = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="no_go_areas")
    assert areas.area_m2.sum() == pytest.approx(sum(z.area for z in zones), rel=1e-6)
    assert areas.area_m2.to_numpy() == pytest.approx(areas.geometry.area.to_numpy())
    assert "drawn_lines" not in {name for name, _ in pyogrio.list_layers(tmp_path / "out" / "plan.gpkg")}
    assert "No-go areas (no pipe enters)" in (tmp_path / "out" / "map.html").read_text()


def _existing_scenario(bundled_plan, tmp_path, lines):
    """The bundled scenario with ``lines`` (a GeoDataFrame drawn in QGIS) as its candidate links."""
    lines.to_file(tmp_path / "network.gpkg", engine="pyogrio")
    data = yaml.safe_load(BUNDLED_SCENARIO.read_text())
    data["streets"]["path"] = str((BUNDLED_SCENARIO.parent / data["streets"]["path"]).resolve())
    data["sources"]["path"] = str(BUNDLED_SCENARIO.parent / data["sources"]["path"])
    data["links"] = {"path": str(tmp_path / "network.gpkg")}
    (tmp_path / "existing.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return tmp_path / "existing.yaml"


def test_existing_pipes_are_reused_where_they_carry_the_load_and_upgraded_where_not(bundled_plan, tmp_path):
    # An existing network drawn in QGIS along streets of the bundled route: the trunk leaving the source as a DN25
    # (far too small: upgraded) and the five longest small branches each one size above what it needs (reused as
    # they are, no capex, where the new route takes them: a route free to build draws the design there).
    import json

    import geopandas as gpd

    pipes = bundled_plan.pipes[(bundled_plan.pipes.circuit == "supply") & (bundled_plan.pipes.kind == "street")]
    trunk = pipes.loc[pipes.design_load_kw.idxmax()]
    dns = bundled_plan.pipes.dn.sort_values().unique()
    branches = pipes[(pipes.dn < dns[-3]) & (pipes.length_m > 20)].sort_values("length_m").iloc[-5:]
    big = dns[np.searchsorted(dns, branches.dn) + 1].astype(int)
    lines = gpd.GeoDataFrame(
        {"status": "existing", "dn": [25, *big], "surface": "street"},
        geometry=[trunk.geometry, *branches.geometry],
        crs=bundled_plan.crs,
    )
    proc = run_cli("plan", str(_existing_scenario(bundled_plan, tmp_path, lines)), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    out = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="pipes")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    reused, upgraded = out[out.status == "existing"], out[out.status == "upgraded"]
    assert len(reused) and len(upgraded)
    assert set(out.status) == {"new", "existing", "upgraded"}
    assert set(reused.existing_dn) <= set(big) and (reused.dn == reused.existing_dn).all()
    assert (reused.cost_eur == 0).all()
    assert 25 in set(upgraded.existing_dn) and (upgraded.dn > upgraded.existing_dn).all()
    assert out.existing_dn[out.status == "new"].isna().all()
    # an upgrade costs the new DN's catalogue price in its trench (each pipe of the pair half of it), as a new pipe
    from heatmap.network import sizing as sz

    cat = sz.load_catalogue(
        BUNDLED_SCENARIO.parent.parent / "pipes_en253.csv", insulation_series=2, cost_column="cost_eur_per_m"
    )
    for part in (upgraded, out[out.status == "new"]):
        want = cat.cost_eur_per_m.reindex(part.dn).to_numpy() * part.length_m * part.cost_factor / 2
        assert part.cost_eur.to_numpy() == pytest.approx(want.to_numpy())
    # the summary adds up to the pipes written, and the capex is theirs
    e = summary["existing_pipes"]
    supply = out[out.circuit == "supply"]
    assert e["route_reused_m"] == pytest.approx(supply.length_m[supply.status == "existing"].sum())
    assert e["route_upgraded_m"] == pytest.approx(supply.length_m[supply.status == "upgraded"].sum())
    assert e["route_reused_m"] + e["route_upgraded_m"] + e["route_new_m"] == pytest.approx(supply.length_m.sum())
    assert e["upgrade_capex_eur"] == pytest.approx(upgraded.cost_eur.sum()) and e["upgrade_capex_eur"] > 0
    assert summary["figures"]["capex_eur"] == pytest.approx(out.cost_eur.sum())
    assert {(u["dn_from"], u["dn_to"]) for u in e["upgrades"]} == set(
        zip(upgraded.existing_dn.astype(int), upgraded.dn, strict=True)
    )
    assert "existing pipes: " in proc.stdout and "reused as they are" in proc.stdout
    drawn = summary["drawn_links"]
    assert len(drawn) == len(lines) and all(d["why"] for d in drawn if d["status"] == "not used")
    assert drawn[0]["status"] in {"used", "partly used"}  # the trunk: upgraded where it is taken


def test_an_existing_pipe_drawn_mid_street_is_reused_where_it_lies(bundled_plan, tmp_path, browser):
    # A utility's existing pipe is not drawn on the street graph's nodes: here the middle half of a long branch of
    # the bundled route, 1 m off the street's centre line, one size above what the branch needs. The streets are
    # split where it ends, and the plan reuses it instead of laying a new pipe beside it.
    import json

    import geopandas as gpd
    import shapely
    from shapely.ops import substring

    pipes = bundled_plan.pipes[(bundled_plan.pipes.circuit == "supply") & (bundled_plan.pipes.kind == "street")]
    dns = bundled_plan.pipes.dn.sort_values().unique()
    # the longest branch with no other pipe within 10 m of its middle half (some streets run beside another)
    for _, branch in pipes[pipes.dn < dns[-3]].sort_values("length_m", ascending=False).iterrows():
        middle = substring(branch.geometry, 0.25, 0.75, normalized=True)
        if shapely.distance(pipes.geometry.drop(branch.name).values, middle).min() > 10:
            break
    drawn = middle.offset_curve(1.0)
    dn = int(dns[np.searchsorted(dns, branch.dn) + 1])
    lines = gpd.GeoDataFrame({"status": ["existing"], "dn": [dn]}, geometry=[drawn], crs=bundled_plan.crs)
    proc = run_cli("plan", str(_existing_scenario(bundled_plan, tmp_path, lines)), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    out = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="pipes")
    reused = out[(out.circuit == "supply") & (out.status == "existing")]
    assert reused.length_m.sum() == pytest.approx(branch.length_m / 2, abs=0.5)
    assert (reused.cost_eur == 0).all() and (reused.existing_dn == dn).all()
    # drawn with no surface of its own, it lies in the street (its upgrade would cost a street trench, not open ground)
    assert (reused.surface == "street").all() and (reused.cost_factor == 1.0).all()
    # no new pipe beside it: the route there is the existing pipe's
    new = out[(out.circuit == "supply") & (out.status == "new")]
    beside = shapely.length(shapely.intersection(new.geometry.values, drawn.buffer(2.0)))
    assert beside.sum() < 5.0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["drawn_links"][0]["status"] == "used"
    assert summary["existing_pipes"]["route_reused_m"] == pytest.approx(reused.length_m.sum())
    # the drawn line as drawn, with what the plan made of it, in the GeoPackage and the map; the pipes laid along it
    # name it
    layer = gpd.read_file(tmp_path / "out" / "plan.gpkg", layer="drawn_lines")
    assert layer.crs == bundled_plan.crs and layer.feature.tolist() == [1] and layer.status.tolist() == ["used"]
    assert layer.drawn_status.tolist() == ["existing"] and layer.dn.tolist() == [dn]
    assert layer.geometry.iloc[0].equals_exact(drawn, 1e-6)
    assert layer.used_m.iloc[0] == pytest.approx(summary["drawn_links"][0]["used_m"])
    assert (reused.link_feature == 1).all() and new.link_feature.isna().all()
    assert out.link_feature[out.kind == "service"].isna().all()  # a service pipe joins a line, is not laid along it
    page = (tmp_path / "out" / "map.html").read_text()
    assert "Drawn lines (used by the plan or not, and why)" in page and "existing pipe, reused as it is" in page
    assert "existing pipe, upgraded to a larger DN" not in page  # the legend shows the patterns the map holds
    assert "reused as they are, none upgraded," in proc.stdout
    from conftest import open_map

    context, tab, errors, _ = open_map(browser, tmp_path / "out" / "map.html")
    try:
        line = tab.locator(".leaflet-heatmap-drawn_lines-pane path.leaflet-interactive")
        assert line.count() == 1
        line.first.dispatch_event("click")
        tab.locator(".leaflet-popup-content").wait_for()
        assert "used" in tab.locator(".leaflet-popup-content").inner_text() and errors == []
        dotted = tab.locator('.leaflet-heatmap-pipes-pane path[stroke-dasharray="1 5"]')
        assert dotted.count() == len(reused)  # each reused pipe drawn dotted (one line per trench)
    finally:
        context.close()


@pytest.mark.parametrize(
    ("dn", "message"),
    [
        (None, "has no 'dn' column"),
        ("big", "a positive whole number such as 100 (got 'big')"),
        (33, "existing pipes of DN 33, which the pipe catalogue does not list"),
    ],
)
def test_an_existing_pipe_without_a_known_dn_is_refused(bundled_plan, tmp_path, dn, message):
    import geopandas as gpd

    line = bundled_plan.pipes.geometry.iloc[0]
    cols = {"status": ["existing"]} | ({} if dn is None else {"dn": [dn]})
    lines = gpd.GeoDataFrame(cols, geometry=[line], crs=bundled_plan.crs)
    proc = run_cli("plan", str(_existing_scenario(bundled_plan, tmp_path, lines)), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout
    assert message in proc.stderr and "feature" in proc.stderr and "network.gpkg" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "out").exists()


def _two_routes(tmp_path, *, min_supply_c, design_section):
    """A plant and a 200 kW consumer 1 km apart, joined by two drawn routes: 1.8 km across open ground (trench
    factor 0.6: cheaper to build) and 1.2 km along a street (less heat lost on the way)."""
    import geopandas as gpd
    from pyproj import Transformer
    from shapely.geometry import LineString

    x0, y0 = 313_000.0, 7_084_000.0
    to_lonlat = Transformer.from_crs(3067, 4326, always_xy=True)
    routes = [
        ("open_terrain", [(0, 0), (0, 400), (1000, 400), (1000, 0)]),
        ("street", [(0, 0), (0, -100), (1000, -100), (1000, 0)]),
    ]
    gpd.GeoDataFrame(
        {"surface": [s for s, _ in routes]},
        geometry=[LineString([(x0 + x, y0 + y) for x, y in c]) for _, c in routes],
        crs=3067,
    ).to_file(tmp_path / "links.gpkg", engine="pyogrio")
    sites = {"PLANT": (0, -5), "FAR": (1000, 5)}
    src = [{"id": "PLANT", "capacity_kw": 5000, "t_supply_c": 85}]
    con = [{"id": "FAR", "annual_demand_mwh": 800, "peak_load_kw": 200}]
    for row in src + con:
        row["lon"], row["lat"] = to_lonlat.transform(x0 + sites[row["id"]][0], y0 + sites[row["id"]][1])
    scenario = {
        "name": "Two routes",
        "streets": {"source": "none", "max_service_length_m": 30},
        "links": {"path": "links.gpkg"},
        "sources": {"inline": src},
        "consumers": {"inline": con},
        "temperatures": {"supply_c": 85, "return_c": 45, "ground_c": 8, "min_consumer_supply_c": min_supply_c},
        "design": design_section,
    }
    (tmp_path / "two_routes.yaml").write_text(yaml.safe_dump(scenario))
    from heatmap.plan import plan_from_scenario
    from heatmap.scenario import scenario_from_file

    return plan_from_scenario(scenario_from_file(tmp_path / "two_routes.yaml"))


def cost_as_built(plan):
    """The route's cost as built, from the written supply pipes: each DN's capex in its trench, losses and pumping."""
    from heatmap.plan import _dn_costs

    net = plan.scenario.network
    cat = sizing.load_catalogue(net.catalogue, insulation_series=net.insulation_series, cost_column=net.cost_column)
    dns = _dn_costs(plan.scenario, cat, None)
    s = plan.pipes[plan.pipes.circuit == "supply"]
    row = dns.reindex(s.dn)
    capex = np.where(s.status == "existing", 0.0, row.capex_eur_per_m.to_numpy() * s.length_m * s.cost_factor)
    return float((capex + row.running_eur_per_m.to_numpy() * s.length_m).sum())


def test_a_failed_check_sends_the_design_round_again(tmp_path):
    # Across open ground the water arrives at 80.7 °C, below the 81 °C the consumer needs: the cheaper route fails
    # its check. Fed back, the edges towards the failing consumer cost double and the design takes the street.
    once = _two_routes(tmp_path, min_supply_c=81.0, design_section={"feedback_rounds": 0})
    assert not once.ok and set(once.violations.check) == {"consumer_supply_temperature"}
    assert once.figures["route_length_m"] == pytest.approx(1800, abs=20)
    plan = _two_routes(tmp_path, min_supply_c=81.0, design_section={})
    assert plan.ok, plan.violations
    assert plan.figures["route_length_m"] == pytest.approx(1200, abs=20)
    supply = plan.pipes[plan.pipes.circuit == "supply"]
    assert supply.length_m[supply.surface == "open_terrain"].sum() < 10  # the last metres to the consumer only
    from heatmap.io.outputs import drawn_link_use

    use = {d["feature"]: (d["status"], d["used_m"]) for d in drawn_link_use(plan.streets)}
    assert use[1][0] == "partly used" and use[1][1] < 10 and use[2] == ("used", pytest.approx(1194, abs=10))
    fb = plan.design["feedback"]
    assert fb["mode"] == "failed_checks" and fb["kept_round"] == 1
    assert [r["failed_checks"] for r in fb["rounds"]] == [1, 0]
    assert fb["rounds"][0]["cost_as_built_eur"] == pytest.approx(cost_as_built(once), rel=1e-9)
    assert fb["rounds"][1]["cost_as_built_eur"] == pytest.approx(cost_as_built(plan), rel=1e-9)


def test_feedback_always_keeps_the_round_that_costs_least_as_built(tmp_path):
    # Where every round passes, re-pricing by the cost as built may or may not find a cheaper plan; the plan kept is
    # the cheapest of its rounds as built, and it is the plan written.
    plan = _two_routes(tmp_path, min_supply_c=75.0, design_section={"feedback": "always", "feedback_rounds": 2})
    assert plan.ok
    fb = plan.design["feedback"]
    assert len(fb["rounds"]) == 3 and all(r["failed_checks"] == 0 for r in fb["rounds"])
    costs = [r["cost_as_built_eur"] for r in fb["rounds"]]
    assert fb["rounds"][fb["kept_round"]]["cost_as_built_eur"] == min(costs)
    assert cost_as_built(plan) == pytest.approx(min(costs), rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_the_euler_tour_of_a_forest_holds_each_subtree_in_its_interval(seed):
    # A random forest of 3 trees and 5 nodes off it: v's subtree is exactly the nodes whose entry time lies in
    # [tin[v], tout[v]), and the entry times are a permutation.
    rng = np.random.default_rng(seed)
    n = 60
    parent = np.full(n, -1)
    for v in range(3, 55):
        parent[v] = rng.integers(0, v)
    tin, tout = design.euler_tour(parent)
    assert sorted(tin.tolist()) == list(range(n))
    T = nx.DiGraph([(int(parent[v]), v) for v in range(n) if parent[v] >= 0])
    T.add_nodes_from(range(n))
    for v in range(n):
        inside = {int(w) for w in np.flatnonzero((tin >= tin[v]) & (tin < tout[v]))}
        assert inside == nx.descendants(T, v) | {v}


def grid_problem(seed: int, *, curve: design.CostCurve) -> design.DesignProblem:
    """A 12 × 12 street grid of random lengths with 40 consumers (a third optional), 2 sources, a few pipes already
    laid."""
    rng = np.random.default_rng(seed)
    side = 12
    edges = []
    for r, c in itertools.product(range(side), range(side)):
        v = r * side + c
        for w in ([v + 1] if c < side - 1 else []) + ([v + side] if r < side - 1 else []):
            edges.append((v, w, float(rng.uniform(30, 150))))
    for i in rng.permutation(len(edges))[:6]:
        edges[i] = (*edges[i], float(rng.uniform(100, 2000)), float(rng.uniform(0, 50)))
    nodes = rng.permutation(np.arange(1, side * side - 1))[:40]
    consumers = [
        (f"C{v}", int(v), float(rng.uniform(10, 400)), bool(i % 3), float(rng.uniform(0, 3e5)))
        for i, v in enumerate(nodes)
    ]
    return problem(edges, consumers, sources=(("S", 0, 1e9), ("T", side * side - 1, 1e9)), curve=curve)


@pytest.mark.parametrize("seed", range(4))
def test_every_edge_priced_at_one_load_costs_what_it_costs_at_that_load(seed):
    # the relocation's prices (at_load) are the edges' costs at that load (at), to the last bit, on every segment,
    # at the segments' ends and on the segment of a pipe laid already
    ix = design.index_problem(grid_problem(seed, curve=_catalogue_curve(segments=3 - seed % 3)))
    assert ix.costs.existing.any()
    ends = np.unique(np.concatenate([ix.costs.lower_kw.ravel(), ix.costs.upper_kw.ravel()]))
    loads = [0.0, 1e-12, 1e-9, 2e-9, 1e6, 1e13, *np.random.default_rng(seed).uniform(0, 3000, 50)]
    loads += [e + d for e in ends for d in (-1e-9, 0.0, 1e-9, 2e-9) if e + d >= 0]
    for load in loads:
        assert np.array_equal(ix.costs.at_load(load), ix.costs.at(np.full(len(ix.edge_id), load))), load


@pytest.mark.parametrize("seed", range(3))
def test_the_local_search_keeps_each_tree_s_prices_as_a_fresh_pricing_has_them(seed):
    # each move hands on the tree priced as it was checked: its loads, costs, objective, slopes up to the source and
    # Euler tour are those of the moved tree priced from scratch; every move lowers the objective
    p = grid_problem(seed, curve=_catalogue_curve(segments=2) if seed % 2 else LINEAR)
    ix = design.index_problem(p)
    arcs = design_heuristic._Arcs(ix)
    state = design_heuristic._TreeState(ix, design_heuristic._select(ix, design_heuristic._steiner_start(ix)), arcs)
    made = 0
    for v in np.random.default_rng(seed).permutation(state.key_nodes()):
        if state.tree.parent[v] < 0:
            continue
        moved = design_heuristic._relocation(state, int(v))
        if moved is None:
            continue
        made += 1
        fresh = design_heuristic._TreeState(ix, moved.tree, arcs)
        assert moved.objective == fresh.objective == design.tree_cost(ix, moved.tree) < state.objective
        for name in ("edge_load", "cost", "slope_up", "tin", "tout", "preorder", "children", "terminal"):
            assert np.array_equal(getattr(moved, name), getattr(fresh, name)), name
        design.depths(moved.tree.parent)  # still a forest
        on = moved.tree.parent >= 0
        assert (moved.edge_load[moved.tree.parent_edge[on]] > 0).all()  # no pipe left idle
        state = moved
    assert made > 0


def test_a_moved_subtree_is_joined_again_at_whichever_of_its_nodes_costs_least():
    # S—A is long, S—B short, A—B short; the tree S→A→B. Joining the subtree {A, B} again at A can only take S—A
    # back; joined at B it is S→B→A, the two pipes short, A—B turned round and carrying A's load only.
    p = problem([(0, 1, 500.0), (0, 2, 100.0), (1, 2, 100.0)], [("A", 1, 10.0, True, 0.0), ("B", 2, 10.0, True, 0.0)])
    ix = design.index_problem(p)
    pos = {int(v): i for i, v in enumerate(ix.node_ids)}
    parent = np.full(ix.n, -1)
    parent[pos[1]], parent[pos[2]] = pos[0], pos[1]
    tree = design.Forest(parent, design.edges_of(ix, parent), np.ones(2, dtype=bool))
    state = design_heuristic._TreeState(ix, tree, design_heuristic._Arcs(ix))
    moved = design_heuristic._relocation(state, pos[1])
    assert moved is not None
    assert moved.tree.parent[pos[2]] == pos[0] and moved.tree.parent[pos[1]] == pos[2]
    assert moved.objective == pytest.approx(100 * (300 + 2 * 20) + 100 * (300 + 2 * 10))
    assert enumerate_optimum(p) == pytest.approx(moved.objective)


@pytest.mark.parametrize("seed", range(3))
def test_perturbation_rounds_never_give_a_dearer_plan_and_give_the_same_plan_twice(seed):
    p = grid_problem(seed, curve=_catalogue_curve(segments=3) if seed % 2 else LINEAR)
    plain = design_heuristic.heuristic_design(p, bound=False, perturbations=0, regions=0)
    perturbed = [design_heuristic.heuristic_design(p, bound=False, perturbations=6, regions=0) for _ in range(2)]
    for d in perturbed:
        check_invariants(p, d)
    assert perturbed[0].objective_eur <= plain.objective_eur
    assert perturbed[0].edges.equals(perturbed[1].edges)
    assert perturbed[0].objective_eur == perturbed[1].objective_eur
    few = design_heuristic.heuristic_design(p, bound=False, perturbations=6, perturbations_max_consumers=39, regions=0)
    assert few.edges.equals(plain.edges)  # 40 consumers: above the size the rounds run at


@pytest.mark.parametrize("seed", range(3))
def test_perturbation_gives_its_trees_cheapest_first_and_the_searches_start_from_them(seed):
    p = grid_problem(seed, curve=_catalogue_curve(segments=3) if seed % 2 else LINEAR)
    ix, tree = _forest(p, design_heuristic.heuristic_design(p, bound=False, regions=0))
    load = float(ix.con_load[ix.reach].sum())
    trees = design_heuristic._perturbed(
        ix,
        tree,
        rounds=6,
        moves=200,
        slope=ix.costs.at(np.full(len(ix.edge_id), load)) / load,
        offset=np.zeros(len(ix.src_node)),
    )
    values = [float(np.subtract(*design.evaluate(ix, t))) for t in trees]
    assert values == sorted(values)
    assert len({t.parent.tobytes() for t in trees}) == len(trees) > 1  # each tree once; the rounds found others
    assert any(np.array_equal(t.parent, tree.parent) for t in trees)  # the tree it started from among them
    # the heuristic's searches from the cheapest of them, merged: never dearer than without, the same plan twice
    alone = design_heuristic.heuristic_design(p, bound=False, perturbations=6, regions=0)
    searched = [
        design_heuristic.heuristic_design(p, bound=False, perturbations=6, regions=12, region_nodes=10)
        for _ in range(2)
    ]
    check_invariants(p, searched[0])
    assert searched[0].objective_eur <= alone.objective_eur + 1e-6
    assert searched[0].edges.equals(searched[1].edges)


def _forest(p: design.DesignProblem, d: design.Design) -> tuple[design.ProblemIndex, design.Forest]:
    ix = design.index_problem(p)
    pos = pd.Series(np.arange(ix.n), index=ix.node_ids)
    parent = np.full(ix.n, -1, dtype=np.int64)
    parent[pos[d.edges.to_node].to_numpy()] = pos[d.edges.from_node].to_numpy()
    return ix, design.Forest(parent, design.edges_of(ix, parent), np.isin(ix.con_id, list(d.connected)))


@pytest.mark.parametrize("seed", range(8))
def test_one_region_holding_the_whole_problem_finds_the_optimum(seed):
    # from the Steiner tree of every consumer, a region of all nodes is the MILP: existing pipes, optional
    # consumers, two sources (one of little capacity) and both cost curves as enumeration has them
    p = random_problem(seed)
    ix = design.index_problem(p)
    start = design_heuristic._steiner_start(ix)
    found = design_lns.improve(ix, [start], rounds=3, region_nodes=ix.n)
    d = design.to_design(ix, found, method="heuristic", status="heuristic")
    check_invariants(p, d)
    assert d.objective_eur == pytest.approx(enumerate_optimum(p), rel=1e-4, abs=1e-3)


@pytest.mark.parametrize("seed", range(8))
def test_merging_a_plan_with_the_optimum_gives_the_optimum(seed):
    # the region of the arcs where the Steiner start and the optimum differ, solved exactly, holds the optimum
    p = random_problem(seed)
    ix = design.index_problem(p)
    red = design_reduce.reduce_problem(ix)
    model = design_milp._model(red.ix, penalty_eur_per_kw=design.overload_eur_per_kw(ix), offset_eur=red.offset_eur)
    start = design.to_design(ix, design_heuristic._steiner_start(ix), method="heuristic", status="heuristic")
    optimum = design_milp._start_vector(red, design_milp.optimal_design(p, solver="highs"), model)
    regions = design_lns._Regions(red.ix, model, design_milp._start_vector(red, start, model))
    before = regions.value()
    assert regions.merge(optimum) == (float(regions.cost @ optimum) < before - 1e-6 * max(1.0, abs(before)))
    assert regions.value() == pytest.approx(min(before, float(regions.cost @ optimum)), rel=1e-6, abs=1e-6)
    d = design.to_design(ix, design_milp._forest_of(model, red, regions.x), method="heuristic", status="heuristic")
    check_invariants(p, d)
    assert d.objective_eur == pytest.approx(enumerate_optimum(p), rel=1e-4, abs=1e-3)
    assert not regions.merge(regions.x)  # nothing differs: nothing to solve


@pytest.mark.parametrize("seed", range(3))
def test_searches_merged_are_never_dearer_than_the_cheapest_search(seed):
    p = grid_problem(seed, curve=_catalogue_curve(segments=3) if seed % 2 else LINEAR)
    plain = design_heuristic.heuristic_design(p, bound=False, regions=0)
    ix, tree = _forest(p, plain)
    red = design_reduce.reduce_problem(ix)
    model = design_milp._model(red.ix, penalty_eur_per_kw=design.overload_eur_per_kw(ix), offset_eur=red.offset_eur)
    x0 = design_milp._start_vector(red, plain, model)
    ends = []
    for k, rounds in enumerate((3, 3, 2)):  # the searches improve() makes before its merge: 8 of its 12 regions
        search = design_lns._Regions(red.ix, model, x0)
        search.search(rounds, 10, seed=k)
        ends.append(search.value())
    merged = [design_lns.improve(ix, [tree] * 3, rounds=12, region_nodes=10) for _ in range(2)]
    d = design.to_design(ix, merged[0], method="heuristic", status="heuristic")
    check_invariants(p, d)
    assert d.objective_eur <= min(ends) + red.offset_eur + 1e-6 * d.objective_eur
    assert np.array_equal(merged[0].parent, merged[1].parent)  # seeded: the same plan twice


@pytest.mark.parametrize("seed", range(3))
def test_regions_never_give_a_dearer_plan_and_their_flow_bounds_cut_off_no_cheaper_one(seed):
    p = grid_problem(seed, curve=_catalogue_curve(segments=3) if seed % 2 else LINEAR)
    plain = design_heuristic.heuristic_design(p, bound=False, perturbations=0, regions=0)
    ix, tree = _forest(p, plain)
    improved = [design_lns.improve(ix, [tree], rounds=12, region_nodes=12) for _ in range(2)]
    d = design.to_design(ix, improved[0], method="heuristic", status="heuristic")
    check_invariants(p, d)
    assert d.objective_eur <= plain.objective_eur + 1e-6
    assert np.array_equal(improved[0].parent, improved[1].parent)  # seeded: the same plan twice
    # each region's sub-MILP has the same optimum with the flows bounded by what may pass it as without
    red = design_reduce.reduce_problem(ix)
    model = design_milp._model(red.ix, penalty_eur_per_kw=design.overload_eur_per_kw(ix), offset_eur=red.offset_eur)
    x0 = design_milp._start_vector(red, plain, model)
    rng = np.random.default_rng(seed)
    cheaper = 0
    for centre, size in zip(rng.integers(red.ix.n, size=6), rng.integers(4, 25, size=6), strict=True):
        values = []
        for bounded in (True, False):
            regions = design_lns._Regions(red.ix, model, x0.copy())
            cheaper += regions.solve(int(centre), int(size), bound_flows=bounded) and bounded
            values.append(float(regions.cost @ regions.x))
        assert values[0] == pytest.approx(values[1], rel=2e-4)
        assert values[0] <= float(regions.cost @ x0) + 1e-6
    assert cheaper  # some region found a cheaper plan (1–4 of the 6 on these grids)


@pytest.mark.parametrize("seed", range(4))
def test_the_steiner_start_is_the_tree_the_router_lays(seed):
    # the heuristic's Steiner start (on the index arrays) and routing.route_network (on a networkx graph) lay the
    # same edges, each oriented away from its source
    from heatmap.network import routing

    p = grid_problem(seed, curve=LINEAR)
    ix = design.index_problem(p)
    start = design_heuristic._steiner_start(ix)
    G = nx.Graph()
    for row in p.edges.itertuples():
        G.add_edge(row.a, row.b, edge_id=row.edge_id, length_m=row.length_m, weight_m=row.weight_m)
    sources = dict(zip(p.sources.source_id, p.sources.node, strict=True))
    routed = routing.route_network(G, sources, dict(zip(p.consumers.consumer_id, p.consumers.node, strict=True)))
    on = np.flatnonzero(start.parent >= 0)
    laid = set(zip(ix.node_ids[start.parent[on]].tolist(), ix.node_ids[on].tolist(), strict=True))
    assert laid == set(zip(routed.edges.from_node.tolist(), routed.edges.to_node.tolist(), strict=True))
    assert set(ix.edge_id[start.parent_edge[on]].tolist()) == set(routed.edges.edge_id.tolist())
    assert start.connected.all()


@pytest.mark.parametrize("top", [3, 40_000])
def test_deepest_first_is_the_stable_sort_by_depth_deepest_first(top):
    depth = np.random.default_rng(top).integers(0, top, 5000)
    assert np.array_equal(design.deepest_first(depth), np.argsort(-depth, kind="stable"))


def test_an_edge_is_priced_on_its_cheapest_segment_holding_the_load_ties_on_the_first():
    # segment_of and at against the plain argmin / min over each edge's segments, with many ties (small integer
    # prices), loads at and just past the segments' ends, and edges taken by rows
    rng = np.random.default_rng(0)
    m = 3000
    lower, upper = np.tile([0, 100, 200, 300.0], (m, 1)), np.tile([100, 200, 300, 1e12], (m, 1))
    fixed, per_kw = rng.integers(0, 3, (m, 4)).astype(float), rng.integers(0, 2, (m, 4)).astype(float)
    costs = design.EdgeCosts(fixed, per_kw, lower, upper, np.zeros(m, dtype=bool))
    for load_kw in (0.0, 50.0, 100.0, 100 + 5e-10, 100 + 2e-9, 200.0, 250.0, 300.0, 5e5):
        load = np.full(m, load_kw)
        price = np.where(
            (load[:, None] <= upper + 1e-9) & ((load[:, None] > lower) | (lower == 0)),
            fixed + per_kw * load[:, None],
            np.inf,
        )
        assert np.array_equal(costs.segment_of(load), price.argmin(axis=1))
        assert np.array_equal(costs.at(load), np.where(load > 1e-9, price.min(axis=1), 0.0))
        rows = rng.permutation(m)[:50]
        assert np.array_equal(costs.segment_of(load[rows], rows), price[rows].argmin(axis=1))
        assert np.array_equal(costs.at(load[rows], rows), costs.at(load)[rows])


def test_a_drawn_line_apart_from_the_plan_is_told_apart_from_one_the_design_passed_over():
    import pandas as pd

    from heatmap.io.outputs import drawn_link_use

    streets = pd.DataFrame(
        {  # a street a-b-c in the plan; drawn line 1 from b to d (joined, unused), line 2 from x to y (alone)
            "u": ["a", "b", "b", "x"],
            "v": ["b", "c", "d", "y"],
            "link_feature": [np.nan, np.nan, 1.0, 2.0],
            "in_plan_m": [10.0, 5.0, 0.0, 0.0],
        }
    )
    streets.attrs["drawn"] = pd.DataFrame(
        {"length_m": [20.0, 30.0], "forbidden": [False, False], "in_no_go": [False, False]}, index=[1, 2]
    )
    why = {d["feature"]: (d["status"], d["why"]) for d in drawn_link_use(streets)}
    assert why[1] == ("not used", "the design joins the buildings at less cost without it")
    assert why[2][0] == "not used" and why[2][1].startswith("it does not join the streets and lines the plan")


def test_a_branch_and_cut_given_no_time_by_the_lp_says_so(caplog):
    # With the bound's time all taken by its LP relaxation, the branch and cut asked for never ran: said, not silent.
    p = random_problem(1)
    ix = design.index_problem(p)
    with caplog.at_level("WARNING", logger="heatmap.network.design_milp"):
        found = design_milp.lp_bound(ix, time_limit_s=1e-9, mip_time_s=5)
    assert found.relaxation != "MILP"
    assert "none was left for the branch and cut ('design.bound_mip_time_s')" in caplog.text.replace("\n", " ")


def test_a_branch_and_cut_stopped_before_any_bound_reports_none():
    # SCIP's "−infinity" (−1e20 €) had been reported as a bound: a gap of 2.9e14 % after a 5 s limit on Helsinki.
    p = random_problem(1)
    ix = design.index_problem(p)
    lp = design_milp._cut_lp(ix, penalty_eur_per_kw=design.overload_eur_per_kw(ix), time_limit_s=30, cut_time_s=5)
    found = lp.search(1e-6)
    assert found.bound_eur == -np.inf or found.bound_eur > -1e15
