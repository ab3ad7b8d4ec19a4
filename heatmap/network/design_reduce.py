"""Exact reductions of an economic network-design problem before the MILP: the same optimum on a smaller graph.

:func:`reduce_problem` fixes the service connections of required consumers, drops dead ends and joins chains of
street segments; :func:`expand` maps a forest on the reduced problem back to the original one. The MILP and its LP
relaxation (:mod:`heatmap.network.design_milp`) solve the reduced problem.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from heatmap.network.design import EdgeCosts, Forest, ProblemIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reduced:
    """A problem made smaller without changing its optimum (:func:`reduce_problem`), and how to map back.

    Attributes
    ----------
    ix
        The reduced problem (its nodes a subset of the original's; consumers: those kept, then one required
        consumer per node that took over fixed service connections, named by a NUL character and the node).
    original
        The problem it was reduced from.
    node_of
        Per reduced node, its original compact node.
    chain_nodes, chain_edges
        Per reduced edge, the original nodes along it from its end ``ea`` to ``eb`` and the original edges between.
    served
        Per original consumer, whether its service connection was fixed (built at its load whatever else is).
    service_edge
        Per original consumer served so, that edge's position (−1 for the others).
    kept
        Per reduced consumer that is an original one, its original position (−1 for the merged ones).
    offset_eur
        The fixed service connections' cost, the same in every design.
    """

    ix: ProblemIndex
    original: ProblemIndex
    node_of: np.ndarray
    chain_nodes: list[np.ndarray]
    chain_edges: list[np.ndarray]
    served: np.ndarray
    service_edge: np.ndarray
    kept: np.ndarray
    offset_eur: float


def reduce_problem(ix: ProblemIndex) -> Reduced:
    """Shrink a problem by three exact rules, the optimum unchanged.

    1. A required consumer alone at the end of its only edge (a service connection) is connected through that edge
       at its load in every design: the edge's cost is a constant (``offset_eur``) and the load moves to the edge's
       other end, which becomes a required terminal.
    2. A node that is no terminal with a single edge carries nothing in an optimal design: it and its edge go
       (repeatedly, so whole dead-end streets go).
    3. A node that is no terminal with two edges of the same segment ranges passes on what enters it: the two edges
       are one of the summed cost (a chain of street segments becomes one edge), unless that would join two nodes
       already joined.

    On the bundled Helsinki streets this leaves about a third of the edges (``heatmap.network.design_milp`` solves
    the reduced problem; its LP relaxation is at least as tight).
    """
    n, m = ix.n, len(ix.edge_id)
    reach = ix.reach
    costs = ix.costs
    is_src = np.zeros(n, dtype=bool)
    is_src[ix.src_node] = True
    con_at = np.full(n, -1, dtype=np.int64)
    con_at[ix.con_node] = np.arange(len(ix.con_node))
    degree = np.bincount(ix.ea, minlength=n) + np.bincount(ix.eb, minlength=n)
    # 1. fixed service connections
    ends = np.concatenate([ix.ea, ix.eb])
    other = np.concatenate([ix.eb, ix.ea])
    edge_at = np.concatenate([np.arange(m), np.arange(m)])
    leaf_edge = np.full(n, -1, dtype=np.int64)
    one = degree[ends] == 1
    leaf_edge[ends[one]] = edge_at[one]
    far = np.full(n, -1, dtype=np.int64)
    far[ends[one]] = other[one]
    c_node = ix.con_node
    served = (
        ix.con_required
        & reach
        & (ix.con_load > 0)
        & (leaf_edge[c_node] >= 0)
        & ~is_src[np.maximum(far[c_node], 0)]
        & (con_at[np.maximum(far[c_node], 0)] < 0)
    )
    service_edge = np.where(served, leaf_edge[c_node], -1)
    offset = float(costs.at(ix.con_load[served], rows=service_edge[served]).sum())
    extra_load = np.zeros(n)
    np.add.at(extra_load, far[c_node[served]], ix.con_load[served])
    terminal = is_src.copy()
    terminal[c_node[~served]] = True
    terminal[far[c_node[served]]] = True

    # the graph without the served consumers' edges and nodes
    alive_edge = np.ones(m, dtype=bool)
    alive_edge[service_edge[served]] = False
    adj: list[dict[int, int]] = [{} for _ in range(n)]  # node → {neighbour: edge}
    for e in np.flatnonzero(alive_edge).tolist():
        a, b = int(ix.ea[e]), int(ix.eb[e])
        adj[a][b] = e
        adj[b][a] = e
    # 2. dead ends, repeatedly
    stack = [v for v in range(n) if not terminal[v] and len(adj[v]) == 1]
    while stack:
        v = stack.pop()
        if terminal[v] or len(adj[v]) != 1:
            continue
        ((w, _e),) = adj[v].items()
        del adj[v][w], adj[w][v]
        if not terminal[w] and len(adj[w]) == 1:
            stack.append(w)
    # 3. chains: each edge of the reduced graph is a path of original edges
    rows_equal = np.ones(m, dtype=bool)  # whether an edge's segment ranges are the first new edge's
    ref = np.flatnonzero(~costs.existing)
    if len(ref):
        lo0, hi0 = costs.lower_kw[ref[0]], costs.upper_kw[ref[0]]
        rows_equal = (costs.lower_kw == lo0).all(axis=1) & (costs.upper_kw == hi0).all(axis=1) & ~costs.existing
    chain_of: dict[int, tuple[list[int], list[int]]] = {}  # edge key → (nodes, edges)
    for e in np.flatnonzero(alive_edge).tolist():
        a, b = int(ix.ea[e]), int(ix.eb[e])
        if b in adj[a] and adj[a][b] == e:
            chain_of[e] = ([a, b], [e])
    next_key = m
    for v in range(n):
        if terminal[v] or len(adj[v]) != 2:
            continue
        (u, e1), (w, e2) = adj[v].items()
        if u == w or w in adj[u] or not (rows_equal[chain_of[e1][1]].all() and rows_equal[chain_of[e2][1]].all()):
            continue
        n1, ed1 = chain_of.pop(e1)
        n2, ed2 = chain_of.pop(e2)
        nodes1 = n1 if n1[-1] == v else n1[::-1]  # u … v
        ed1 = ed1 if n1[-1] == v else ed1[::-1]
        nodes2 = n2 if n2[0] == v else n2[::-1]  # v … w
        ed2 = ed2 if n2[0] == v else ed2[::-1]
        key = next_key
        next_key += 1
        chain_of[key] = (nodes1 + nodes2[1:], ed1 + ed2)
        del adj[u][v], adj[w][v]
        adj[v] = {}
        adj[u][w] = key
        adj[w][u] = key
    live = np.array(
        sorted(
            {x for nodes, _ in chain_of.values() for x in (nodes[0], nodes[-1])}
            | set(np.flatnonzero(terminal).tolist())
        ),
        dtype=np.int64,
    )
    pos = np.full(n, -1, dtype=np.int64)
    pos[live] = np.arange(len(live))
    keys = sorted(chain_of)
    chain_nodes = [np.asarray(chain_of[k][0], dtype=np.int64) for k in keys]
    chain_edges = [np.asarray(chain_of[k][1], dtype=np.int64) for k in keys]
    first = np.array([c[0] for c in chain_edges], dtype=np.int64)
    member = np.concatenate(chain_edges) if chain_edges else np.zeros(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(keys)), [len(c) for c in chain_edges])
    fixed = np.zeros((len(keys), costs.segments))
    per_kw = np.zeros((len(keys), costs.segments))
    np.add.at(fixed, owner, costs.fixed_eur[member])
    np.add.at(per_kw, owner, costs.eur_per_kw[member])
    r_costs = EdgeCosts(fixed, per_kw, costs.lower_kw[first], costs.upper_kw[first], costs.existing[first])
    length = np.bincount(owner, weights=ix.length_m[member], minlength=len(keys))
    weight = np.bincount(owner, weights=ix.weight_m[member], minlength=len(keys))
    ea = pos[[c[0] for c in chain_nodes]] if keys else np.zeros(0, dtype=np.int64)
    eb = pos[[c[-1] for c in chain_nodes]] if keys else np.zeros(0, dtype=np.int64)
    # consumers: the kept ones, then one per node taking over served ones
    kept_con = np.flatnonzero(~served)
    merged_nodes = np.flatnonzero(extra_load > 0)
    con_node = np.concatenate([pos[ix.con_node[kept_con]], pos[merged_nodes]])
    nn = len(live)
    edge_pos = np.arange(1, len(keys) + 1)
    _, label = sp.csgraph.connected_components(
        sp.csr_matrix((np.ones(len(ea)), (ea, eb)), shape=(nn, nn)), directed=False
    )
    src_node = pos[ix.src_node]
    r_ix = ProblemIndex(
        n=nn,
        node_ids=ix.node_ids[live],
        ea=ea,
        eb=eb,
        edge_id=np.array([f"\x00{k}" for k in keys], dtype=object),
        length_m=length,
        weight_m=weight,
        src_node=src_node,
        src_cap=ix.src_cap,
        src_id=ix.src_id,
        con_node=con_node,
        con_load=np.concatenate([ix.con_load[kept_con], extra_load[merged_nodes]]),
        con_required=np.concatenate([ix.con_required[kept_con], np.ones(len(merged_nodes), dtype=bool)]),
        con_prize=np.concatenate([ix.con_prize[kept_con], np.zeros(len(merged_nodes))]),
        con_id=np.concatenate([ix.con_id[kept_con], np.array([f"\x00{v}" for v in merged_nodes], dtype=object)]),
        reach=np.isin(label[con_node], label[src_node]),
        lookup=sp.csr_matrix(
            (np.concatenate([edge_pos, edge_pos]), (np.concatenate([ea, eb]), np.concatenate([eb, ea]))), shape=(nn, nn)
        ),
        costs=r_costs,
    )
    kept = np.concatenate([kept_con, np.full(len(merged_nodes), -1)])
    logger.debug(
        "Design problem reduced from %d to %d edges and %d to %d nodes (%d service connections fixed, %.6g €)",
        m, len(keys), n, nn, int(served.sum()), offset,
    )  # fmt: skip
    return Reduced(r_ix, ix, live, chain_nodes, chain_edges, served, service_edge, kept, offset)


def expand(red: Reduced, tree: Forest) -> Forest:
    """Map a forest on the reduced problem back to the original: chains unrolled, fixed service connections added."""
    ix = red.original
    parent = np.full(ix.n, -1, dtype=np.int64)
    parent_edge = np.full(ix.n, -1, dtype=np.int64)
    for q in np.flatnonzero(tree.parent >= 0):
        nodes, edges = red.chain_nodes[tree.parent_edge[q]], red.chain_edges[tree.parent_edge[q]]
        if nodes[0] != red.node_of[tree.parent[q]]:  # run the chain from the parent to the child
            nodes, edges = nodes[::-1], edges[::-1]
        parent[nodes[1:]] = nodes[:-1]
        parent_edge[nodes[1:]] = edges
    s = np.flatnonzero(red.served)
    se = red.service_edge[s]
    c_node = ix.con_node[s]
    parent[c_node] = np.where(ix.ea[se] == c_node, ix.eb[se], ix.ea[se])
    parent_edge[c_node] = se
    connected = red.served.copy()
    own = red.kept >= 0
    connected[red.kept[own]] = tree.connected[own]
    return Forest(parent, parent_edge, connected)
