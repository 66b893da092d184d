"""Every error case of DESIGN.md "Errors" for ``convcore.conv2d``: the right
exception type, a message naming the argument, never a crash or a wrong answer.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convcore

F32, F64 = np.float32, np.float64


def arrays(dtype=F32, x_shape=(1, 4, 6, 6), w_shape=(3, 4, 3, 3)):
    return np.ones(x_shape, dtype), np.ones(w_shape, dtype)


def conv(**kwargs):
    """conv2d on a small valid problem, with some arguments replaced."""
    x, w = arrays()
    args = dict(input=x, weight=w)
    args.update(kwargs)
    return convcore.conv2d(args.pop("input"), args.pop("weight"), **args)


# --------------------------------------------------------------------------
# ValueError: names and values
# --------------------------------------------------------------------------

@pytest.mark.parametrize("argument,value", [
    ("padding", "full"),
    ("padding", "SAME"),
    ("padding", ""),
    ("padding_mode", "mirror"),
    ("padding_mode", "zero"),
    ("algorithm", "no-such-algorithm"),
    ("algorithm", "Direct"),
    ("activation", "no_such_activation"),
    ("activation", "Relu"),
])
def test_unknown_names(argument, value):
    with pytest.raises(ValueError, match=argument):
        conv(**{argument: value})


@pytest.mark.parametrize("argument,value", [
    ("stride", 0), ("stride", -1), ("stride", (1, 0)), ("stride", (-2, 1)),
    ("dilation", 0), ("dilation", -3), ("dilation", (0, 1)),
    ("groups", 0), ("groups", -1),
])
def test_non_positive_parameters(argument, value):
    with pytest.raises(ValueError, match=argument):
        conv(**{argument: value})


@pytest.mark.parametrize("value", [-1, (0, -1), (-2, 0)])
def test_negative_padding(value):
    with pytest.raises(ValueError, match="padding"):
        conv(padding=value)


@pytest.mark.parametrize("value", [(1,), (1, 2, 3), ()])
def test_padding_and_stride_wrong_length(value):
    for argument in ("padding", "stride", "dilation"):
        with pytest.raises(ValueError, match=argument):
            conv(**{argument: value})


@pytest.mark.parametrize("stride", [2, (1, 2), (2, 1)])
def test_same_padding_needs_stride_one(stride):
    with pytest.raises(ValueError, match="same|stride"):
        conv(padding="same", stride=stride)


def test_groups_not_dividing_input_channels():
    x, _ = arrays(x_shape=(1, 6, 6, 6))
    with pytest.raises(ValueError, match="groups"):
        convcore.conv2d(x, np.ones((4, 1, 3, 3), F32), groups=4)


def test_groups_not_dividing_output_channels():
    x, _ = arrays(x_shape=(1, 4, 6, 6))
    with pytest.raises(ValueError, match="groups"):
        convcore.conv2d(x, np.ones((3, 2, 3, 3), F32), groups=2)


@pytest.mark.parametrize("w_shape,params", [
    ((3, 4, 7, 3), {}),
    ((3, 4, 3, 7), {}),
    ((3, 4, 9, 9), dict(padding=1)),
    ((3, 4, 3, 3), dict(dilation=4)),          # dilated extent 9 > 6
    ((3, 4, 3, 3), dict(dilation=(1, 3))),  # dilated width 7 > 6
])
def test_kernel_larger_than_padded_input(w_shape, params):
    x, _ = arrays()
    with pytest.raises(ValueError, match="kernel|weight|input"):
        convcore.conv2d(x, np.ones(w_shape, F32), **params)


@pytest.mark.parametrize("w_shape", [(3, 5, 3, 3), (3, 2, 3, 3), (3, 4, 3), (3, 4, 3, 3, 1), (12,)])
def test_wrong_weight_shape(w_shape):
    x, _ = arrays()
    with pytest.raises(ValueError, match="weight"):
        convcore.conv2d(x, np.ones(w_shape, F32))


def test_wrong_weight_shape_for_groups():
    x, _ = arrays()
    with pytest.raises(ValueError, match="weight|groups"):
        convcore.conv2d(x, np.ones((4, 4, 3, 3), F32), groups=2)


@pytest.mark.parametrize("b_shape", [(4,), (2,), (1,), (), (3, 1), (1, 3)])
def test_wrong_bias_shape(b_shape):
    x, w = arrays()
    with pytest.raises(ValueError, match="bias"):
        convcore.conv2d(x, w, np.ones(b_shape, F32))


@pytest.mark.parametrize("x_shape", [(6, 6), (4,), (), (1, 1, 4, 6, 6)])
def test_wrong_input_rank(x_shape):
    _, w = arrays()
    with pytest.raises(ValueError, match="input"):
        convcore.conv2d(np.ones(x_shape, F32), w)


def test_wrong_input_channels():
    _, w = arrays()
    with pytest.raises(ValueError, match="channel|weight|input"):
        convcore.conv2d(np.ones((1, 5, 6, 6), F32), w)


@pytest.mark.parametrize("x_shape", [(1, 4, 0, 6), (1, 4, 6, 0), (4, 0, 0)])
def test_zero_size_spatial_dims(x_shape):
    _, w = arrays(w_shape=(3, 4, 1, 1))
    with pytest.raises(ValueError, match="input"):
        convcore.conv2d(np.ones(x_shape, F32), w, padding=1)


@pytest.mark.parametrize("padding", [3, (3, 0), (0, 6), 7])
def test_reflect_padding_not_smaller_than_input(padding):
    x = np.ones((1, 4, 3, 6), F32)
    _, w = arrays(w_shape=(3, 4, 1, 1))
    with pytest.raises(ValueError, match="padding|reflect"):
        convcore.conv2d(x, w, padding=padding, padding_mode="reflect")


# --------------------------------------------------------------------------
# out=
# --------------------------------------------------------------------------

@pytest.mark.parametrize("out_shape",
                         [(1, 3, 4, 5), (1, 3, 4), (2, 3, 4, 4), (3, 4, 4), (1, 4, 4, 4)])
def test_out_wrong_shape(out_shape):
    with pytest.raises(ValueError, match="out"):
        conv(out=np.empty(out_shape, F32))


def test_out_wrong_dtype():
    with pytest.raises(TypeError, match="out"):
        conv(out=np.empty((1, 3, 4, 4), F64))


def test_out_not_writable():
    out = np.empty((1, 3, 4, 4), F32)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out"):
        conv(out=out)


@pytest.mark.parametrize("make", [
    lambda: np.asfortranarray(np.empty((1, 3, 4, 4), F32)),
    lambda: np.empty((1, 3, 4, 8), F32)[..., ::2],
    lambda: np.empty((1, 4, 4, 3), F32).transpose(0, 3, 1, 2),
    lambda: np.broadcast_to(np.empty((1, 3, 4, 1), F32), (1, 3, 4, 4)),
], ids=["fortran", "strided", "transposed", "broadcast"])
def test_out_not_c_contiguous(make):
    out = make()
    with pytest.raises(ValueError, match="out"):
        conv(out=out)


def test_out_overlapping_input():
    # A 1x1 convolution has out and input of the same shape: out=input would alias.
    x = np.ones((1, 4, 6, 6), F32)
    w = np.ones((4, 4, 1, 1), F32)
    with pytest.raises(ValueError, match="out"):
        convcore.conv2d(x, w, out=x)
    buffer = np.ones(2 * x.size, F32)
    x = buffer[:x.size].reshape(x.shape)
    out = buffer[x.size // 2:x.size // 2 + x.size].reshape(x.shape)  # half overlaps x
    with pytest.raises(ValueError, match="out"):
        convcore.conv2d(x, w, out=out)


def test_out_overlapping_strided_input():
    # input is every other element of the buffer, out the contiguous second half.
    buffer = np.ones(4 * 4 * 6 * 6, F32)
    x = buffer[::2].reshape(1, 4, 6, 12)[..., :6]
    out = buffer[buffer.size // 2:buffer.size // 2 + 4 * 6 * 6].reshape(1, 4, 6, 6)
    with pytest.raises(ValueError, match="out"):
        convcore.conv2d(x, np.ones((4, 4, 1, 1), F32), out=out)


def test_out_overlapping_weight_or_bias():
    x = np.ones((1, 4, 3, 3), F32)
    w = np.ones((4, 4, 3, 3), F32)           # output (1, 4, 1, 1)
    with pytest.raises(ValueError, match="out"):
        convcore.conv2d(x, w, out=w.reshape(-1)[:4].reshape(1, 4, 1, 1))
    b = np.ones(4, F32)
    with pytest.raises(ValueError, match="out"):
        convcore.conv2d(x, w, b, out=b.reshape(1, 4, 1, 1))


def test_out_adjacent_to_input_is_fine():
    buffer = np.zeros(2 * 4 * 6 * 6, F32)
    x = buffer[:144].reshape(1, 4, 6, 6)
    x[...] = 1
    out = buffer[144:].reshape(1, 4, 6, 6)
    w = np.ones((4, 4, 1, 1), F32)
    assert convcore.conv2d(x, w, out=out) is out
    np.testing.assert_array_equal(out, 4)


# --------------------------------------------------------------------------
# TypeError: dtypes and non-integer parameters
# --------------------------------------------------------------------------

def _message(excinfo):
    return str(excinfo.value)


def test_mixed_float32_float64_names_both():
    x32, w32 = arrays(F32)
    x64, w64 = arrays(F64)
    for args in [(x32, w64), (x64, w32), (x32, w32, np.ones(3, F64)), (x64, w64, np.ones(3, F32))]:
        with pytest.raises(TypeError) as excinfo:
            convcore.conv2d(*args)
        assert "float32" in _message(excinfo) and "float64" in _message(excinfo)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_, np.float16,
                                   np.complex64, np.complex128, object, np.longdouble])
def test_unsupported_dtypes(dtype):
    if dtype is np.longdouble and np.dtype(np.longdouble) == np.dtype(np.float64):
        pytest.skip("long double is double on this platform")
    x, w = arrays(F32)
    bad_x = np.ones(x.shape, dtype)
    bad_w = np.ones(w.shape, dtype)
    for args in [(bad_x, bad_w), (bad_x, w), (x, bad_w), (x, w, np.ones(3, dtype))]:
        with pytest.raises(TypeError):
            convcore.conv2d(*args)


@pytest.mark.parametrize("argument", ["stride", "padding", "dilation", "groups"])
@pytest.mark.parametrize("value", [1.5, 1.0, True, False, None, (1, 1.5), (True, 1),
                                   np.float64(1.0), np.bool_(True)],
                         ids=["1.5", "1.0", "True", "False", "None", "pair-float", "pair-bool",
                              "np.float64", "np.bool_"])
def test_non_integer_parameters(argument, value):
    if argument == "groups" and isinstance(value, tuple):
        value = next(v for v in value if type(v) is not int)  # groups is a single int
    with pytest.raises(TypeError, match=argument):
        conv(**{argument: value})


@pytest.mark.parametrize("argument", ["stride", "dilation", "groups"])
def test_string_for_integer_parameter(argument):
    with pytest.raises(TypeError, match=argument):
        conv(**{argument: "1"})


@pytest.mark.parametrize("argument,value", [("padding_mode", 0), ("algorithm", None),
                                            ("activation", 3), ("activation", 1.5)])
def test_non_string_names(argument, value):
    with pytest.raises((TypeError, ValueError), match=argument):
        conv(**{argument: value})


# --------------------------------------------------------------------------
# Sizes beyond 64 bits / beyond memory
# --------------------------------------------------------------------------

def _run_isolated(code):
    """Run ``code`` in a fresh interpreter so a crash cannot take the test session down."""
    import os

    import convcore as package

    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(package.__file__))
    env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env=env)


@pytest.mark.parametrize("k", [2**8, 1], ids=["output-overflows-64bit", "output-too-big"])
def test_huge_shapes_refused(k):
    # The input is one float broadcast to 2**59 elements (stride 0, no memory). With K=256
    # filters the output has 2**67 elements: the size product overflows 64 bits. With K=1
    # it has 2**59 float32s (2 EiB): it cannot be allocated. Either way conv2d must raise
    # before allocating or computing anything.
    result = _run_isolated(f"""
        import numpy as np, convcore
        x = np.broadcast_to(np.float32(1), (2**20, 1, 2**20, 2**19))
        w = np.ones(({k}, 1, 1, 1), np.float32)
        try:
            convcore.conv2d(x, w)
        except (ValueError, MemoryError) as e:
            print("RAISED", type(e).__name__, e)
        else:
            print("NO ERROR")
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RAISED" in result.stdout, result.stdout + result.stderr[-2000:]


def test_huge_weight_refused():
    # 2**58 weights of stride 0 and a 1 TiB output: refuse, do not attempt.
    result = _run_isolated("""
        import numpy as np, convcore
        x = np.ones((1, 2**20, 1, 1), np.float32)
        w = np.broadcast_to(np.float32(1), (2**38, 2**20, 1, 1))
        try:
            convcore.conv2d(x, w)
        except (ValueError, MemoryError) as e:
            print("RAISED", type(e).__name__, e)
        else:
            print("NO ERROR")
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "RAISED" in result.stdout, result.stdout + result.stderr[-2000:]


# --------------------------------------------------------------------------
# One message per error, whichever entry point: the function, the layer and the C++ API
# (through _core: the problem types' validation, Conv2dOp's constructor) say the same
# --------------------------------------------------------------------------

def _messages(*calls):
    out = []
    for call in calls:
        with pytest.raises(ValueError) as excinfo:
            call()
        out.append(str(excinfo.value))
    return out


# The text tests/cpp/test_errors.cpp (one_message) expects from the C++ API.
REFLECT_MESSAGE = ("conv2d: padding_mode='reflect' needs padding < the input size, got padding "
                   "(top, bottom, left, right) = (4, 4, 4, 4) for input (H, W) = (3, 3)")


def test_reflect_padding_one_message_everywhere():
    from convcore import _core, layers

    x, w = np.ones((1, 4, 3, 3), F32), np.ones((2, 4, 1, 1), F32)
    msgs = _messages(
        lambda: convcore.conv2d(x, w, padding=4, padding_mode="reflect"),
        lambda: layers.Conv2d(4, 2, 1, padding=4, padding_mode="reflect")(x),
        lambda: layers.Conv2d(4, 2, 1, padding=4, padding_mode="reflect").output_shape(x.shape),
        lambda: _core.conv2d_output_shape(x.shape, w.shape, (1, 1), (4, 4, 4, 4), (1, 1), 1,
                                          "reflect"),
        lambda: _core.Conv2dOp(w, None, (4, 3, 3), (1, 1), (4, 4, 4, 4), (1, 1), 1, "reflect",
                               "none", 1.0, 0.0, "auto"),
    )
    assert msgs == [REFLECT_MESSAGE] * len(msgs)


@pytest.mark.parametrize("case", ["kernel-too-large", "groups", "stride", "dilation",
                                  "padding", "pool-padding", "pool-too-small", "lc-kernel"])
def test_function_and_layer_give_one_message(case):
    from convcore import _core, layers

    x = np.ones((2, 6, 6, 6), F32)
    calls = {
        "kernel-too-large": (
            lambda: convcore.conv2d(x, np.ones((3, 6, 7, 3), F32)),
            lambda: layers.Conv2d(6, 3, (7, 3))(x),
            lambda: _core.conv2d_output_shape(x.shape, (3, 6, 7, 3), (1, 1), (0, 0, 0, 0),
                                              (1, 1), 1, "zeros")),
        "groups": (
            lambda: convcore.conv2d(x, np.ones((4, 2, 3, 3), F32), groups=4),
            lambda: layers.Conv2d(6, 4, 3, groups=4),
            lambda: _core.conv2d_check_parameters(6, 4, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), 4,
                                                  "zeros")),
        "stride": (
            lambda: convcore.conv2d(x, np.ones((3, 6, 3, 3), F32), stride=(1, 0)),
            lambda: layers.Conv2d(6, 3, 3, stride=(1, 0))),
        "dilation": (
            lambda: convcore.conv2d(x, np.ones((3, 6, 3, 3), F32), dilation=-1),
            lambda: layers.Conv2d(6, 3, 3, dilation=-1)),
        "padding": (
            lambda: convcore.conv2d(x, np.ones((3, 6, 3, 3), F32), padding=(0, -2)),
            lambda: layers.Conv2d(6, 3, 3, padding=(0, -2))),
        "pool-padding": (
            lambda: convcore.max_pool2d(x, 3, padding=2),
            lambda: layers.MaxPool2d(3, padding=2),
            lambda: _core.pool2d_check_parameters((3, 3), (3, 3), (2, 2), (1, 1), False)),
        "pool-too-small": (
            lambda: convcore.avg_pool2d(x, 7),
            lambda: layers.AvgPool2d(7)(x),
            lambda: layers.AvgPool2d(7).output_shape(x.shape)),
        "lc-kernel": (
            lambda: convcore.locally_connected2d(x, np.ones((1, 1, 3, 6, 7, 7), F32)),
            lambda: layers.LocallyConnected2d(6, 3, 6, 7)),
    }[case]
    msgs = _messages(*calls)
    assert len(set(msgs)) == 1, msgs
