"""The SCNN/SAD lane decoder: probability maps -> lane polylines in source-image pixels.

Pipeline (``prob2lines``/``getLane`` of the SCNN and ENet-SAD releases, see ``docs/decoder.md``):

1. ``k x k`` mean smoothing of every lane channel (zero padding like Torch by default);
2. a lane is decoded when its existence probability is > ``exist_threshold``;
3. at each sample row (CULane: source rows 589, 569, ..., 249) take the column argmax of the smoothed
   map on the matching network row and keep it when the smoothed value is > ``threshold``;
4. lanes with fewer than ``min_points`` kept points are dropped;
5. optionally, a natural cubic spline x(y) through the points, resampled every ``resample_step``
   source pixels of y (or at ``h_samples``) within the points' y-span.

Only the sampled rows are smoothed: for each one the ``k`` rows of its band are summed, then a ``k``-wide
horizontal box sum is taken. Both sums are explicit sequences of elementwise float32 additions, so the
numpy and torch kernels (CPU or GPU) produce bit-identical sums and therefore identical lanes. CPU tensors
go through the numpy kernel by default (zero-copy view, faster than torch's CPU indexing); tensors on an
accelerator stay there until the (B, L, rows) argmax results.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np

from lanekd.decode.profiles import DecodeProfile, get_profile

Lanes = list[np.ndarray]
_NUMPY_TORCH_DTYPES = ("torch.float16", "torch.float32", "torch.float64")


def _is_torch(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _border_index(idx: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Map possibly out-of-range indices into ``0..n-1`` for a border mode.

    Returns ``(index, weight)``; ``weight`` is a 0/1 float32 array for ``zero`` padding (out-of-range
    samples contribute 0) and ``None`` when every sample is real.
    """
    if mode == "zero":
        valid = (idx >= 0) & (idx < n)
        return np.clip(idx, 0, n - 1), (None if valid.all() else valid.astype(np.float32))
    if mode == "replicate":
        return np.clip(idx, 0, n - 1), None
    # reflect101 (OpenCV BORDER_REFLECT_101 / numpy "reflect"): ... 2 1 | 0 1 2 ... n-1 | n-2 ...
    if n == 1:
        return np.zeros_like(idx), None
    period = 2 * n - 2
    r = np.abs(idx) % period
    return np.where(r >= n, period - r, r), None


def _tables(prof: DecodeProfile, h: int, w: int) -> dict[str, Any]:
    half = prof.kernel // 2
    rows = prof.net_rows(h)
    row_idx, row_w = _border_index(rows[:, None] + np.arange(-half, half + 1), h, prof.border)
    col_idx, col_w = _border_index(np.arange(-half, w + half), w, prof.border)
    return {"rows": rows, "row_idx": row_idx, "row_w": row_w, "col_idx": col_idx, "col_w": col_w}


def _box_sums(prob: Any, b: Any, c: Any, t: dict[str, Any], k: int, conv: Any, to32: Any, stack: Any) -> Any:
    """``k x k`` box sums of channels ``prob[b[i], c[i]]`` at the sampled rows only: (n, R, w).

    Written once for numpy and torch (``conv`` makes an index/weight array of the backend, ``to32``
    casts to float32, ``stack`` stacks along a new axis 2): the same elementwise float32 additions in
    the same order on both. The vertical pass adds the band rows of every sampled row as views (no
    gather); rows in the zero padding are skipped (adding 0.0 changes nothing).
    """
    lanes = prob[:, 1:]
    row_w = t["row_w"]
    per_row = []
    for i, ridx in enumerate(t["row_idx"].tolist()):
        rows = [r for j, r in enumerate(ridx) if row_w is None or row_w[i, j] != 0]
        acc = to32(lanes[:, :, rows[0], :])
        if len(rows) == 1:
            acc = acc * 1.0  # a copy, never a view of the input
        else:
            acc = acc + to32(lanes[:, :, rows[1], :])
            for r in rows[2:]:
                acc += to32(lanes[:, :, r, :])  # in place: same IEEE result as acc + x
        per_row.append(acc)
    v = stack(per_row)[b, c - 1]  # (n, R, w): only the selected lanes go on
    vp = v[..., conv(t["col_idx"])]
    if t["col_w"] is not None:
        vp *= conv(t["col_w"])
    w = prob.shape[-1]
    if k == 1:
        return vp
    s = vp[..., 0:w] + vp[..., 1 : w + 1]
    for j in range(2, k):
        s += vp[..., j : j + w]
    return s


def _box_sums_numpy(prob: np.ndarray, b: np.ndarray, c: np.ndarray, t: dict[str, Any], k: int) -> np.ndarray:
    return _box_sums(prob, b, c, t, k, np.asarray, lambda a: a.astype(np.float32, copy=False),
                     lambda xs: np.stack(xs, axis=2))


def _sample_numpy(prob: np.ndarray, b: np.ndarray, c: np.ndarray, t: dict[str, Any],
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column argmax of the box sums at the sampled rows: col, sum, each (n, R)."""
    s = _box_sums_numpy(prob, b, c, t, k)
    col = s.argmax(axis=-1)
    return col, np.take_along_axis(s, col[..., None], axis=-1)[..., 0]


def _sample_torch(prob: Any, b: np.ndarray, c: np.ndarray, t: dict[str, Any],
                  k: int) -> tuple[np.ndarray, np.ndarray]:
    """Torch twin of :func:`_sample_numpy`; stays on ``prob.device`` until the (n, R) results."""
    import torch

    def conv(a: np.ndarray) -> Any:
        return torch.as_tensor(a, device=prob.device)

    s = _box_sums(prob, conv(b), conv(c), t, k, conv, lambda a: a.float(), lambda xs: torch.stack(xs, dim=2))
    smax, col = s.max(dim=-1)  # first maximal index, as numpy's argmax
    return col.cpu().numpy(), smax.cpu().numpy()


@functools.lru_cache(maxsize=4096)
def _spline_matrix(
    ys: tuple[float, ...], step: float, h_samples: tuple[int, ...] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Resampling grid and the linear map from point x values to spline values on it.

    A natural cubic spline is linear in its data values, so ``x_grid = M @ x`` for a matrix ``M`` that
    depends only on the knots ``ys`` (bottom first); it is built once per knot pattern and cached.
    """
    y = np.asarray(ys, dtype=np.float64)
    y_bot, y_top = float(y[0]), float(y[-1])
    if h_samples is not None:
        grid = np.array([v for v in sorted(h_samples, reverse=True) if y_top <= v <= y_bot], dtype=np.float64)
    else:
        n = int(np.floor((y_bot - y_top) / step + 1e-9)) + 1
        grid = y_bot - step * np.arange(n, dtype=np.float64)
    from scipy.interpolate import CubicSpline  # lazy: scipy.interpolate takes ~0.3 s to import

    order = np.argsort(y)  # CubicSpline needs increasing abscissae
    basis = CubicSpline(y[order], np.eye(len(y))[order], bc_type="natural", axis=0)
    return grid, np.ascontiguousarray(basis(grid))


def _to_numpy_exist(exist: Any, B: int, L: int) -> np.ndarray:
    if exist is None:
        return np.ones((B, L), dtype=np.float64)
    e = exist.detach().cpu().float().numpy() if _is_torch(exist) else np.asarray(exist, dtype=np.float64)
    if e.shape != (B, L):
        raise ValueError(f"decode: exist must have shape (B, L) = ({B}, {L}) to match prob, "
                         f"got {tuple(e.shape)}")
    return e


def decode(
    prob: Any,
    exist: Any,
    profile: str | DecodeProfile = "culane",
    spline: bool = True,
    backend: str = "auto",
    **options: Any,
) -> list[list[np.ndarray]]:
    """Decode lane polylines from segmentation probabilities.

    Args:
        prob: ``(B, L+1, h, w)`` class probabilities (softmax output; channel 0 = background) at network
            resolution, a numpy array or a torch tensor on any device (floating dtype).
        exist: ``(B, L)`` lane existence probabilities (sigmoid output), numpy or torch; ``None`` decodes
            every slot (for models without an existence branch).
        profile: a profile name (``culane``, ``culane-crop``, ``tusimple``, ``llamas``, ``synthetic``) or
            a :class:`~lanekd.decode.profiles.DecodeProfile`.
        spline: fit a natural cubic spline x(y) through the points and resample it (``resample_step``
            pixels of y, or the profile's ``h_samples``); ``False`` returns the raw sample points.
        backend: ``auto`` (torch kernel for tensors on an accelerator, numpy otherwise: a CPU tensor is
            viewed as a numpy array, since torch's intra-op threads slow its many small CPU ops down on
            a busy machine), ``numpy`` or ``torch``. All backends give identical lanes.
        options: overrides of profile fields, e.g. ``threshold=0.3``, ``exist_threshold=0.5``,
            ``border="reflect101"``, ``kernel=9``, ``min_points=2``.

    Returns:
        Per image a list of ``L`` float64 arrays (one per slot, in slot order) of shape ``(N, 2)`` holding
        ``(x, y)`` source-image pixels ordered bottom to top; ``(0, 2)`` when the lane is absent.

    Raises:
        ValueError: wrong shapes or a non-floating ``prob``.
        ConfigError: unknown profile or option.
    """
    prof = get_profile(profile, **options)
    is_torch = _is_torch(prob)
    shape = tuple(prob.shape)
    if len(shape) != 4:
        raise ValueError(f"decode: prob must be (B, L+1, h, w), got a {len(shape)}-d array of shape {shape}")
    B, C, h, w = shape
    if C < 2:
        raise ValueError(f"decode: prob needs a background channel and at least one lane channel, got {C}")
    L = C - 1
    ex = _to_numpy_exist(exist, B, L)
    if B == 0:
        return []
    if backend not in ("auto", "numpy", "torch"):
        raise ValueError(f"decode: backend must be auto, numpy or torch, got {backend!r}")
    if is_torch and not prob.is_floating_point():
        raise ValueError(f"decode: prob must be floating point probabilities, got {prob.dtype}")
    use_torch = is_torch and (backend == "torch" or (backend == "auto" and prob.device.type != "cpu"))
    if backend == "torch" and not is_torch:
        raise ValueError("decode: backend='torch' needs a torch tensor")
    if not is_torch and np.asarray(prob).dtype.kind != "f":
        raise ValueError(f"decode: prob must be floating point probabilities, got {np.asarray(prob).dtype}")
    # Only slots that exist are smoothed and searched.
    present = ex > prof.exist_threshold
    sel = np.nonzero(present)
    b_idx, c_idx = sel[0].astype(np.int64), sel[1].astype(np.int64) + 1
    if len(b_idx) == 0:  # nothing to search
        col_sel, ssum = np.zeros((0, prof.num_rows), np.int64), np.zeros((0, prof.num_rows), np.float32)
    elif use_torch:
        col_sel, ssum = _sample_torch(prob.detach(), b_idx, c_idx, _tables(prof, h, w), prof.kernel)
    else:
        if is_torch:
            src = prob.detach().cpu()
            arr = src.numpy() if str(src.dtype) in _NUMPY_TORCH_DTYPES else src.float().numpy()
        else:
            arr = np.asarray(prob)
        col_sel, ssum = _sample_numpy(arr, b_idx, c_idx, _tables(prof, h, w), prof.kernel)
    # Same float32 division on both paths, so the threshold decision is identical too.
    value = np.zeros((B, L, prof.num_rows), dtype=np.float32)
    value[sel] = ssum.astype(np.float32) / np.float32(prof.kernel * prof.kernel)
    col = np.zeros((B, L, prof.num_rows), dtype=np.int64)
    col[sel] = col_sel
    keep = (value > prof.threshold) & present[:, :, None]
    ok = keep.sum(axis=-1) >= prof.min_points
    xs = prof.columns_to_x(col, w)
    ys = prof.sample_ys()
    empty = np.zeros((0, 2), dtype=np.float64)
    out: list[list[np.ndarray]] = []
    for b in range(B):
        lanes: Lanes = []
        for lane in range(L):
            if not ok[b, lane]:
                lanes.append(empty.copy())
                continue
            m = keep[b, lane]
            x, y = xs[b, lane, m], ys[m]
            if spline and len(y) >= 2:
                grid, mat = _spline_matrix(tuple(y.tolist()), float(prof.resample_step), prof.h_samples)
                lanes.append(np.stack([mat @ x, grid], axis=1) if len(grid) else empty.copy())
            else:
                lanes.append(np.stack([x, y], axis=1))
        out.append(lanes)
    return out
