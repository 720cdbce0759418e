"""Throughput of the block-sparse soft-min kernels on the CPU, side by side in one process.

The kept cluster pairs of a real multiscale solve (shells, N = M, blur 1 % of the diameter, at
the final eps) are reduced by: the fused numba kernel with scalar exp (float64 path), the
float32 kernel with the vectorised polynomial exp, the scalar-exp kernel on float32 (the
before/after of that change), KeOps's block-sparse ranges mode, and the batched-matmul torch tiles.
Reports billions of kept pairs per second (median of REPS). Usage:
    python benchmarks/fused_kernel.py [N ...]         (default 10000)
"""
from __future__ import annotations

import sys

import numpy as np
import torch
from common import machine, median_time, shells, table, write

REPS = 5


def main(sizes: list[int]) -> None:
    from shapeot.ot.backends import fused
    from shapeot.ot.backends.blocksparse import BlockSparseKernel
    from shapeot.ot.clusters import choose_cell_size, cluster
    from shapeot.ot.multiscale import MAX_CELLS, POINTS_PER_CELL
    from shapeot.ot.schedule import diameter

    scalar_kernel = fused._build()

    def scalar32(xs, ys, h, eps, xoff, yoff, indptr, indices):
        out = np.empty(len(xs), dtype=np.float32)
        none = np.zeros((1, 1), dtype=np.float32)
        scalar_kernel(xs, ys, h, np.float32(0.5 / eps), xoff, yoff, indptr, indices, none, False, out, none)
        return out, None

    rows = []
    for n in sizes:
        x, y = shells(n, dtype=torch.float32)
        center = torch.cat([x, y]).mean(0)
        x, y = x - center, y - center
        lo = torch.minimum(x.min(0).values, y.min(0).values)
        diam = diameter(x, y)
        target = int(min(MAX_CELLS, max(8, 2 * n / POINTS_PER_CELL)))
        cell = choose_cell_size(torch.cat([x, y]), lo, diam, target)
        w = torch.full((n,), 1.0 / n)
        cx, cy = cluster(x, w, lo, cell), cluster(y, w, lo, cell)
        eps = (0.01 * diam) ** 2
        hs = torch.zeros(len(y)) - torch.log(torch.tensor(float(len(y))))
        k = BlockSparseKernel(x, y, cx, cy, engine="numba")
        csr, _ = k._mask(eps, hs[cy.perm])  # (indptr (Kx + 1,), indices) of the kept cluster pairs
        indptr, jj = csr[0].numpy(), csr[1]
        xs, ys, xoff, yoff = k._np
        pairs = k.stats["kept_fraction"] * n * n
        h32 = hs[cy.perm].numpy()
        runs = {
            "numba scalar exp (f64)": lambda: fused.lse_csr(xs.astype(np.float64), ys.astype(np.float64),
                                                          h32.astype(np.float64), eps,
                                                          xoff, yoff, indptr, jj.numpy()),
            "numba scalar exp (f32)": lambda: scalar32(xs, ys, h32, eps, xoff, yoff, indptr, jj.numpy()),
            "numba polynomial exp (f32)": lambda: fused.lse_csr(xs, ys, h32, eps, xoff, yoff, indptr, jj.numpy()),
        }
        from shapeot.ot.backends import available_backends

        if "keops" in available_backends():
            kk = BlockSparseKernel(x, y, cx, cy, engine="keops")
            runs["keops ranges (f32)"] = lambda: kk._reduce_keops(eps, hs[cy.perm], csr, None)
        kt = BlockSparseKernel(x, y, cx, cy, engine="torch")
        runs["torch tiles (f32)"] = lambda: kt._reduce_torch(eps, hs[cy.perm], csr, None)
        ref = None
        for name, fn in runs.items():
            t, out, mem = median_time(fn, REPS)
            lse = np.asarray(out[0], dtype=np.float64)
            if ref is None:
                ref = lse
            rows.append({"n": n, "kernel": name, "kept_fraction": pairs / n / n, "median_s": t,
                         "gpairs_per_s": pairs / t / 1e9,
                         "max_abs_diff": float(np.abs(np.sort(lse) - np.sort(ref)).max())})
            print(rows[-1], flush=True)
    info = machine()
    info["numba_threads"] = __import__("numba").get_num_threads()
    print(table(rows, ["n", "kernel", "kept_fraction", "median_s", "gpairs_per_s", "max_abs_diff"]))
    print("wrote", write("fused_kernel", info, rows))


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10000])
