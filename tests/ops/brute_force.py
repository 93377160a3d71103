"""Independent oracles for the tree-scan tests: O(V^2) closed forms and Kruskal, written from the
definitions in reference-grootvl.md 1.3 and 1.6 / 1.9, sharing no code with the package."""

from __future__ import annotations

import numpy as np
import torch


def parents_from_edges(edges: list[tuple[int, int]], num_vertices: int, root: int) -> list[int]:
    """Vertex-space parent of every vertex (root -> -1) by a depth-first walk."""
    adj = [[] for _ in range(num_vertices)]
    for s, t in edges:
        adj[s].append(t)
        adj[t].append(s)
    par = [-2] * num_vertices
    par[root] = -1
    stack = [root]
    while stack:
        v = stack.pop()
        for w in adj[v]:
            if par[w] == -2:
                par[w] = v
                stack.append(w)
    assert all(p != -2 for p in par), "not a spanning tree"
    return par


def path_product_matrix(par: list[int], a: np.ndarray) -> np.ndarray:
    """``M[d, i, j] = S(i, j)``: product of ``a[d, child]`` over the edges of the tree path i..j."""
    v = len(par)
    anc = []
    for i in range(v):
        chain, c = [i], i
        while par[c] >= 0:
            c = par[c]
            chain.append(c)
        anc.append(chain)
    d = a.shape[0]
    m = np.zeros((d, v, v), dtype=np.float64)
    for i in range(v):
        up_i = {w: k for k, w in enumerate(anc[i])}
        for j in range(v):
            # lowest common ancestor: first vertex of j's chain that is on i's chain
            k_j = next(k for k, w in enumerate(anc[j]) if w in up_i)
            lca = anc[j][k_j]
            prod = np.ones(d)
            for w in anc[i][: up_i[lca]]:
                prod = prod * a[:, w]
            for w in anc[j][:k_j]:
                prod = prod * a[:, w]
            m[:, i, j] = prod
    return m


def subtree_mask(par: list[int]) -> np.ndarray:
    """``mask[i, j] = 1`` when ``j`` lies in the subtree of ``i`` (``i`` included)."""
    v = len(par)
    mask = np.zeros((v, v))
    for j in range(v):
        c = j
        while c >= 0:
            mask[c, j] = 1
            c = par[c]
    return mask


def closed_form(x: torch.Tensor, a: torch.Tensor, edges_per_batch, root: int, mode: str) -> torch.Tensor:
    """``y_i = sum_j S(i, j) x_j`` (full) or restricted to ``j`` in subtree(i) (subtree), float64."""
    out = torch.zeros_like(x, dtype=torch.float64)
    for b in range(x.shape[0]):
        par = parents_from_edges(edges_per_batch[b], x.shape[2], root)
        m = path_product_matrix(par, a[b].double().numpy())
        if mode == "subtree":
            m = m * subtree_mask(par)[None]
        out[b] = torch.from_numpy(np.einsum("dij,dj->di", m, x[b].double().numpy()))
    return out


def kruskal(edges: list[tuple[int, int]], weights: list[float], num_vertices: int) -> set[tuple[int, int]]:
    """MST edge set under the total order (float32 weight, edge index), NaN last."""
    w32 = np.asarray(weights, dtype=np.float32)
    keys = sorted(
        range(len(edges)), key=lambda e: (bool(np.isnan(w32[e])), 0.0 if np.isnan(w32[e]) else float(w32[e]), e)
    )
    uf = list(range(num_vertices))

    def find(v):
        while uf[v] != v:
            uf[v] = uf[uf[v]]
            v = uf[v]
        return v

    out = set()
    for e in keys:
        s, t = edges[e]
        rs, rt = find(s), find(t)
        if rs != rt:
            uf[rs] = rt
            out.add((int(s), int(t)))
    return out
