"""convcore.dask: blockwise results equal the NumPy call on the whole array, bitwise
(random geometries x random chunkings), on the threaded scheduler and on a LocalCluster
of worker processes (one that loses a worker mid-computation included); the same errors
as the NumPy calls, raised before computing; predict; the per-thread cap; pickling of
layers (also through a multiprocessing pool), which is how models reach workers."""

import multiprocessing
import os
import pickle
import threading

import numpy as np
import pytest

import convcore
from convcore import _core
from convcore import layers as L

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
cd = pytest.importorskip("convcore.dask")


def _chunks(rng, n, pieces=4):
    """A random chunking of length n (1 to `pieces` chunks, sizes from 1)."""
    cuts = np.unique(rng.integers(1, n, size=rng.integers(0, pieces))) if n > 1 else []
    edges = np.r_[0, cuts, n]
    return tuple(int(v) for v in np.diff(edges))


def _same(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want, equal_nan=True), np.nanmax(np.abs(got - want))


def _conv_case(rng, dtype=np.float32):
    """(x, weight, bias, kwargs) of a random valid conv2d, small."""
    while True:
        n, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
        groups = int(rng.choice([g for g in (1, 2, 3) if c % g == 0]))
        k = groups * int(rng.integers(1, 3))
        r, s = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        h, w = int(rng.integers(4, 30)), int(rng.integers(4, 30))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
        if stride == (1, 1) and rng.random() < 0.3:
            padding = "same"
        kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=str(rng.choice(["zeros", "reflect", "replicate", "circular"])),
                  activation=rng.choice([None, "relu", "tanh"]),
                  algorithm=str(rng.choice(["direct", "im2col", "auto"])))
        x = rng.standard_normal((n, c, h, w)).astype(dtype)
        wt = rng.standard_normal((k, c // groups, r, s)).astype(dtype)
        b = rng.standard_normal(k).astype(dtype) if rng.random() < 0.7 else None
        try:
            convcore.conv2d(x[:0], wt, b, **kw)
        except ValueError:
            continue  # e.g. a kernel larger than the padded image, reflect too wide
        return x, wt, b, kw


# ----------------------------------------------------------------------------- threaded


@pytest.fixture
def threaded():
    with dask.config.set(scheduler="threads", num_workers=2):
        yield


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_random_geometries_and_chunkings(threaded, isa, dtype):
    rng = np.random.default_rng(18 + (dtype == np.float64))
    for _ in range(12):
        x, w, b, kw = _conv_case(rng, dtype)
        want = convcore.conv2d(x, w, b, **kw)
        chunks = (_chunks(rng, x.shape[0], 2), x.shape[1], _chunks(rng, x.shape[2]),
                  _chunks(rng, x.shape[3]))
        got = cd.conv2d(da.from_array(x, chunks=chunks), w, b, **kw)
        assert got.shape == want.shape
        _same(got.compute(), want)


def test_conv2d_unbatched_chunked_channels_and_nan(threaded):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 33, 29)).astype(np.float32)
    x[1, 16, 9] = np.nan  # on a chunk edge: the NaN reaches the neighbours' outputs
    x[2, 0, 0] = np.inf
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    with pytest.warns(UserWarning, match="channel axis"):
        y = cd.conv2d(da.from_array(x, chunks=(2, 16, 9)), w, padding=1)
    _same(y.compute(), convcore.conv2d(x, w, padding=1))


def test_empty_batch(threaded):
    x = da.zeros((0, 3, 20, 20), dtype=np.float32, chunks=(1, 3, 8, 8))
    w = np.ones((2, 3, 3, 3), np.float32)
    assert cd.conv2d(x, w, padding=1).compute().shape == (0, 2, 20, 20)
    assert cd.avg_pool2d(x, 3, 2, 1).compute().shape == (0, 3, 10, 10)


def test_sobel_relu_output_chunks_follow_input(threaded):
    img = np.random.default_rng(2).random((96, 80), dtype=np.float32)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 4
    x = da.from_array(img, chunks=(32, 40))
    y = cd.conv2d(x[None, None], sobel[None, None], padding=1, activation="relu")
    assert y.chunks[2:] == x.chunks
    # The blocks read x's chunks and add the axes themselves: no view task per chunk.
    graph = dict(y.__dask_optimize__(y.__dask_graph__(), y.__dask_keys__()))
    assert not any(isinstance(k, tuple) and k[0].startswith("getitem") for k in graph)
    assert len(graph) == 2 * 3 * 2 + 2  # chunks, blocks, the op, the output buffer
    _same(y.compute()[0, 0], convcore.conv2d(img[None, None], sobel[None, None], padding=1,
                                             activation="relu")[0, 0])
    # Stride 2: chunk edges 31, 62, 93 (rows) and 41 (columns) move down to multiples of
    # 2, and the output chunks are the halves.
    y2 = cd.conv2d(da.from_array(img, chunks=(31, 41))[None, None], sobel[None, None],
                   stride=2, padding=1)
    assert y2.chunks[2:] == ((15, 16, 15, 2), (20, 20))
    _same(y2.compute(), convcore.conv2d(img[None, None], sobel[None, None], stride=2, padding=1))


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_halo_source_follows_the_scheduler(mode):
    """Made for an in-process scheduler, blocks read their neighbours' chunks in place (no
    edge tasks); made for another (processes, a cluster), they read published edges. Both
    graphs give the whole-array result on any scheduler."""
    img = np.random.default_rng(5).random((2, 3, 45, 38), dtype=np.float32)
    w = np.random.default_rng(6).random((4, 3, 3, 3), dtype=np.float32) - 0.5
    x = da.from_array(img, chunks=(1, 3, 16, 13))
    want = convcore.conv2d(img, w, padding=2, dilation=(2, 1), padding_mode=mode)
    graphs = {}
    for scheduler in ("threads", "sync", "processes"):
        with dask.config.set(scheduler=scheduler):
            y = cd.conv2d(x, w, padding=2, dilation=(2, 1), padding_mode=mode)
        graphs[scheduler] = y
        names = {k[0] if isinstance(k, tuple) else k for k in y.__dask_graph__()}
        assert any("-edges-" in n for n in names) == (scheduler == "processes"), scheduler
    for scheduler, y in graphs.items():
        _same(y.compute(scheduler="sync"), want)
    # A 2-D image given new axes (blocks read its chunks and make the views): the same.
    x2 = da.from_array(img[1, 2], chunks=(16, 13))[None, None]
    for scheduler in ("threads", "processes"):
        with dask.config.set(scheduler=scheduler):
            y = cd.conv2d(x2, w[:, 2:], padding=2, dilation=(2, 1), padding_mode=mode)
        _same(y.compute(scheduler="sync"), convcore.conv2d(
            img[1:, 2:], w[:, 2:], padding=2, dilation=(2, 1), padding_mode=mode))


def _buffer_tasks(y):
    """Keys of the whole-output buffer in ``y``'s graph as compute() optimizes it."""
    graph = y.__dask_optimize__(y.__dask_graph__(), y.__dask_keys__())
    return [k for k in dict(graph) if isinstance(k, str) and k.startswith("buffer-")]


def test_compute_fills_one_output_and_hands_it_out_once(threaded):
    """On an in-process scheduler compute() has the block tasks write into one output
    (no concatenation after them); every result is still the caller's own array."""
    rng = np.random.default_rng(7)
    img = rng.standard_normal((2, 3, 37, 45)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    want = convcore.conv2d(img, w, padding=1, activation="relu")
    y = cd.conv2d(da.from_array(img, chunks=(1, 3, 13, 16)), w, padding=1, activation="relu")
    assert len(_buffer_tasks(y)) == 1
    a, b = y.compute(), y.compute()
    _same(a, want)
    assert a.flags.c_contiguous and a.flags.writeable and not np.shares_memory(a, b)
    c, d = dask.compute(y, y[:1])
    _same(c, want)
    _same(d, want[:1])
    assert not np.shares_memory(c, d)
    a[...] = 0
    _same(b, want)
    persisted = y.persist()
    _same(persisted.compute(), want)
    out = np.zeros_like(want)
    da.store(y, out, lock=False)  # store and anything built on y keep blocks of their own
    _same(out, want)
    assert _buffer_tasks(y[:, :2] + 0) == []
    _same((y[:, :2] + 0).compute(), want[:, :2])
    with dask.config.set(scheduler="processes"):
        assert _buffer_tasks(y) == []


def test_buffer_claimed_once_and_detached_when_pickled():
    """The filled buffer is handed out once (blocks assembled again give a copy). Pickled to
    another process, it arrives empty: blocks return their own arrays and are concatenated."""
    blocks = [[np.full((2, 3), i + 2.0 * j, np.float32) for i in range(2)] for j in range(2)]
    want = np.block(blocks)
    buffer = cd._Buffer((4, 6), np.float32)
    views = [[cd._into(buffer, (slice(2 * j, 2 * j + 2), slice(3 * i, 3 * i + 3)), np.copy,
                       blocks[j][i]) for i in range(2)] for j in range(2)]
    first, second = cd._assemble(views), cd._assemble(views)
    assert first is buffer.array and not np.shares_memory(first, second)
    _same(first, want)
    _same(second, want)
    detached = pickle.loads(pickle.dumps(cd._Buffer((4, 6), np.float32)))
    assert detached.array is None
    whole = [[cd._into(detached, (slice(0, 2), slice(0, 3)), np.copy, b) for b in row]
             for row in blocks]
    assert all(b.base is None for row in whole for b in row)
    _same(cd._assemble(whole), want)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pools_random_geometries_and_chunkings(threaded, kind):
    rng = np.random.default_rng(7 + (kind == "avg"))
    done = 0
    while done < 25:
        h, w = int(rng.integers(3, 30)), int(rng.integers(3, 30))
        k = (int(rng.integers(1, 6)), int(rng.integers(1, 6)))
        s = None if rng.random() < 0.3 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        p = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        ceil = bool(rng.integers(0, 2))
        x = rng.standard_normal((2, 3, h, w))
        x[rng.random(x.shape) < 0.02] = np.nan
        if kind == "max":
            d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            args = (k, s, p, d, ceil)
        else:
            args = (k, s, p, ceil, bool(rng.integers(0, 2)))
        numpy_f = convcore.max_pool2d if kind == "max" else convcore.avg_pool2d
        dask_f = cd.max_pool2d if kind == "max" else cd.avg_pool2d
        try:
            want = numpy_f(x, *args)
        except ValueError:
            continue
        chunks = (1, _chunks(rng, 3, 2), _chunks(rng, h), _chunks(rng, w))
        _same(dask_f(da.from_array(x, chunks=chunks), *args).compute(), want)
        done += 1


def test_pool_in_place_when_windows_tile_the_chunks(threaded):
    x = np.random.default_rng(3).random((2, 3, 64, 48), dtype=np.float32)
    y = cd.max_pool2d(da.from_array(x, chunks=(1, 3, 16, 16)), 2)
    # No edges published: every block reads only its own chunk.
    assert not [k for k in y.dask.keys() if "edges" in str(k)]
    _same(y.compute(), convcore.max_pool2d(x, 2))


@pytest.mark.parametrize("func", ["correlate2d", "convolve2d"])
def test_signal_random_modes_boundaries_dtypes(threaded, func):
    rng = np.random.default_rng(11 + (func == "convolve2d"))
    numpy_f, dask_f = getattr(convcore, func), getattr(cd, func)
    for _ in range(30):
        h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        kshape = (int(rng.integers(1, 7)), int(rng.integers(1, 7)))
        dtype = rng.choice([np.float32, np.float64, np.int16, np.complex64])
        x = (rng.standard_normal((h, w)) * 10).astype(dtype)
        k = (rng.standard_normal(kshape) * 3).astype(dtype)
        mode = str(rng.choice(["full", "same", "valid"]))
        boundary = str(rng.choice(["fill", "wrap", "symm"]))
        fill = float(rng.choice([0, 1.5]))
        xd = da.from_array(x, chunks=(_chunks(rng, h), _chunks(rng, w)))
        try:
            want = numpy_f(x, k, mode, boundary, fill)
        except ValueError as e:
            with pytest.raises(ValueError) as got:
                dask_f(xd, k, mode, boundary, fill)
            assert str(got.value) == str(e)
            continue
        _same(dask_f(xd, k, mode, boundary, fill).compute(), want)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("call", [
    lambda f, x, w: f.conv2d(x, w.astype(np.float64)),
    lambda f, x, w: f.conv2d(x, w[:, :2]),
    lambda f, x, w: f.conv2d(x, w, stride=0),
    lambda f, x, w: f.conv2d(x, w, padding="same", stride=2),
    lambda f, x, w: f.conv2d(x, w, padding_mode="mirror"),
    lambda f, x, w: f.conv2d(x, w, padding=40, padding_mode="reflect"),
    lambda f, x, w: f.conv2d(x, w, groups=2),
    lambda f, x, w: f.conv2d(x, w, algorithm="fft"),
    lambda f, x, w: f.conv2d(x, w, activation="gelu"),
    lambda f, x, w: f.conv2d(x, w, bias=np.ones(5, np.float32)),
    lambda f, x, w: f.conv2d(x[0, 0], w),
    lambda f, x, w: f.conv2d(x, np.ones((2, 3, 40, 3), np.float32)),
    lambda f, x, w: f.max_pool2d(x, 3, padding=2),
    lambda f, x, w: f.max_pool2d(x, 40),
    lambda f, x, w: f.avg_pool2d(x, 2, ceil_mode=1),
    lambda f, x, w: f.correlate2d(x[0, 0], w[0, 0], mode="middle"),
    lambda f, x, w: f.convolve2d(x[0, 0], w[0, 0], boundary="reflect"),
    lambda f, x, w: f.correlate2d(x[0], w[0, 0]),
], ids=lambda call: "")
def test_errors_are_the_numpy_calls_and_eager(call):
    x = np.zeros((2, 3, 20, 24), np.float32)
    w = np.ones((2, 3, 3, 3), np.float32)
    with pytest.raises((ValueError, TypeError)) as want:
        call(convcore, x, w)
    xd = da.from_array(x, chunks=(1, 3, 7, 7)).map_blocks(_never_computed, dtype=x.dtype)
    with pytest.raises(want.type) as got:
        call(cd, xd, w)
    assert str(got.value) == str(want.value)


def _never_computed(block):
    raise AssertionError("the input was computed while checking arguments")


def test_out_and_unknown_chunks_are_refused():
    x = da.zeros((1, 1, 8, 8), dtype=np.float32, chunks=4)
    with pytest.raises(TypeError, match="out must be None"):
        cd.conv2d(x, np.ones((1, 1, 3, 3), np.float32), out=np.empty((1, 1, 6, 6), np.float32))
    unknown = da.zeros((16, 8), dtype=np.float32, chunks=4)
    unknown = unknown[unknown[:, 0] == 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        cd.correlate2d(unknown, np.ones((3, 3), np.float32))


# ----------------------------------------------------------------------------- threads


def test_thread_limit_is_per_thread_and_results_do_not_change():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 8, 40, 40)).astype(np.float32)
    w = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    want = convcore.conv2d(x, w, padding=1, algorithm="im2col")
    seen = {}

    def capped():
        _core.set_thread_limit(1)
        seen["capped"] = (_core.get_thread_limit(), convcore.conv2d(x, w, padding=1,
                                                                    algorithm="im2col"))

    t = threading.Thread(target=capped)
    t.start()
    t.join()
    assert seen["capped"][0] == 1 and _core.get_thread_limit() == 0
    _same(seen["capped"][1], want)
    with pytest.raises(ValueError):
        _core.set_thread_limit(-1)


def test_tasks_run_under_the_configured_cap(threaded):
    x = da.zeros((1, 1, 16, 16), dtype=np.float32, chunks=8)
    w = np.ones((1, 1, 3, 3), np.float32)
    for n in (1, 2):
        with dask.config.set({"convcore.threads_per_task": n}):
            y = cd.conv2d(x, w, padding=1)
        ops = [v for v in y.dask.values() if isinstance(v, cd._Op)]
        assert len(ops) == 1 and ops[0].threads == n
        y.compute()
    assert _core.get_thread_limit() == 0


# ----------------------------------------------------------------------------- predict


def _lenet(dtype=np.float32):
    return L.Sequential(
        L.Conv2d(1, 6, 5, padding=2, activation="relu", dtype=dtype, seed=1), L.MaxPool2d(2),
        L.Conv2d(6, 16, 5, activation=L.Sigmoid(0.5, 0.1), dtype=dtype, seed=2),
        L.AvgPool2d(2), L.Flatten(), L.Dense(400, 120, activation="tanh", dtype=dtype, seed=3),
        L.ReLU(), L.Dense(120, 10, dtype=dtype, seed=4))


def test_predict_equals_the_whole_batch(threaded):
    model = _lenet()
    x = np.random.default_rng(4).random((37, 1, 28, 28), dtype=np.float32)
    y = cd.predict(model, da.from_array(x, chunks=((5, 16, 1, 15), 1, 28, 28)))
    assert y.chunks == ((5, 16, 1, 15), (10,))
    assert sum(1 for v in y.dask.values() if isinstance(v, L.Module)) == 1
    _same(y.compute(), model(x))
    with pytest.warns(UserWarning, match="besides the batch"):
        cd.predict(model, da.from_array(x, chunks=(8, 1, 14, 28)))
    with pytest.raises(TypeError, match="float64"):
        cd.predict(model, da.zeros((4, 1, 28, 28), chunks=(2, 1, 28, 28)))
    with pytest.raises(ValueError, match="channels"):
        cd.predict(model, da.zeros((4, 2, 28, 28), dtype=np.float32, chunks=(2, 2, 28, 28)))


# ----------------------------------------------------------------------------- pickling


def _every_layer():
    rng = np.random.default_rng(0)
    conv = L.Conv2d(3, 4, 3, padding=1, padding_mode="reflect", activation="relu", seed=1)
    conv(rng.random((1, 3, 8, 8), dtype=np.float32))  # a packed op in its cache
    return [
        (conv, (2, 3, 8, 8)),
        (L.Conv2d(4, 4, 3, groups=2, bias=False, dtype=np.float64, seed=2), (2, 4, 7, 9)),
        (L.Dense(12, 5, activation=L.LeakyReLU(0.2), seed=3), (3, 12)),
        (L.LocallyConnected2d(2, 3, (6, 6), 3, seed=4), (2, 2, 6, 6)),
        (L.ReLU(), (2, 5)), (L.Sigmoid(0.08, 50), (2, 5)), (L.Tanh(), (2, 5)),
        (L.Abs(), (2, 5)), (L.Square(), (2, 5)), (L.LeakyReLU(0.3), (2, 5)),
        (L.MaxPool2d(3, 2, 1, ceil_mode=True), (1, 2, 9, 9)),
        (L.AvgPool2d(2, count_include_pad=False, padding=1), (1, 2, 9, 9)),
        (L.Flatten(), (2, 3, 4)),
        (_lenet(), (3, 1, 28, 28)),
    ]


def _inputs(layer, shape):
    dtype = getattr(layer, "dtype", np.float32) if not isinstance(layer, L.Sequential) \
        else np.float32
    return np.random.default_rng(1).standard_normal(shape).astype(dtype)


def test_every_layer_pickles():
    for layer, shape in _every_layer():
        x = _inputs(layer, shape)
        copy = pickle.loads(pickle.dumps(layer))
        assert type(copy) is type(layer) and repr(copy) == repr(layer)
        _same(copy(x), layer(x))
        for p, q in zip(layer.parameters(), copy.parameters()):
            _same(q.data, p.data)
    # Loaded weights are the layer's own: assignment re-packs as before.
    dense = pickle.loads(pickle.dumps(L.Dense(4, 2, seed=1)))
    dense.weight = np.ones((2, 4), np.float32)
    _same(dense(np.ones((1, 4), np.float32)), np.full((1, 2), 4, np.float32) + dense.bias)


def test_unpickled_arrays_are_accepted():
    # Arrays from pickle (workers, pools) carry an equal but distinct dtype object.
    x = pickle.loads(pickle.dumps(np.ones((1, 1, 5, 5), np.float32)))
    w = pickle.loads(pickle.dumps(np.ones((1, 1, 3, 3), np.float32)))
    assert x.dtype is not np.dtype(np.float32)
    _same(convcore.conv2d(x, w), np.full((1, 1, 3, 3), 9, np.float32))
    _same(convcore.relu(x), np.ones((1, 1, 5, 5), np.float32))


def _run_layer(args):
    layer, x = args
    return layer(x)


def test_layers_through_a_multiprocessing_pool():
    cases = [(layer, _inputs(layer, shape)) for layer, shape in _every_layer()[:4]]
    cases.append((_every_layer()[-1][0], _inputs(_lenet(), (3, 1, 28, 28))))
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = pool.map(_run_layer, cases)
    for (layer, x), y in zip(cases, results):
        _same(y, layer(x))


# ----------------------------------------------------------------------------- distributed


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  worker_dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_distributed_random_cases(client):
    rng = np.random.default_rng(31)
    for _ in range(2):
        x, w, b, kw = _conv_case(rng)
        chunks = (1, x.shape[1], _chunks(rng, x.shape[2]), _chunks(rng, x.shape[3]))
        _same(cd.conv2d(da.from_array(x, chunks=chunks), w, b, **kw).compute(),
              convcore.conv2d(x, w, b, **kw))
    img = rng.standard_normal((40, 50))
    k = rng.standard_normal((4, 3))
    _same(cd.correlate2d(da.from_array(img, chunks=(13, 17)), k, "same", "symm").compute(),
          convcore.correlate2d(img, k, "same", "symm"))
    x = rng.standard_normal((2, 3, 21, 22))
    _same(cd.avg_pool2d(da.from_array(x, chunks=(1, 1, 8, 9)), 3, 2, 1, True, False).compute(),
          convcore.avg_pool2d(x, 3, 2, 1, True, False))
    model = _lenet()
    xs = rng.random((20, 1, 28, 28), dtype=np.float32)
    _same(cd.predict(model, da.from_array(xs, chunks=(6, 1, 28, 28))).compute(), model(xs))


def test_graph_made_for_threads_computed_on_the_cluster(client):
    """Optimized for the threaded scheduler (the default when the call is made) but run on
    the cluster: the buffer reaches the workers detached and the result is still exact."""
    rng = np.random.default_rng(33)
    img = rng.standard_normal((1, 2, 30, 41)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    with dask.config.set(scheduler="threads"):
        y = cd.conv2d(da.from_array(img, chunks=(1, 2, 11, 14)), w, padding=1)
        assert len(_buffer_tasks(y)) == 1
        got = y.compute(scheduler=client)
    _same(got, convcore.conv2d(img, w, padding=1))


def _die_once(block, marker):
    """Kills the worker process running it the first time any worker runs it."""
    import distributed

    try:
        distributed.get_worker()
    except ValueError:
        return block
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return block
    os.close(fd)
    os._exit(1)


def test_distributed_worker_killed_mid_computation(client, tmp_path):
    rng = np.random.default_rng(32)
    img = rng.standard_normal((64, 60)).astype(np.float32)
    w = rng.standard_normal((2, 1, 5, 3)).astype(np.float32)
    x = da.from_array(img[None, None], chunks=(1, 1, 16, 20))
    x = x.map_blocks(_die_once, str(tmp_path / "killed"), dtype=x.dtype)
    y = cd.conv2d(x, w, padding=(2, 1), padding_mode="circular", activation="relu")
    _same(y.compute(), convcore.conv2d(img[None, None], w, padding=(2, 1),
                                       padding_mode="circular", activation="relu"))
    assert (tmp_path / "killed").exists()
