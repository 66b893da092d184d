"""convcore.machine: the CPU from a cpuinfo text, the Zen generation from family and
model, report names that tell machines apart, the kind from given peaks, and the probes
(positive figures; no timing is asserted) — issue 14 item 3, issue 19 item 9."""

import math
import subprocess
import sys

import pytest

from convcore import _core, bench, machine

# /proc/cpuinfo as the development VMs print it: the model name alone does not say
# which generation the EPYC is.
CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: {model}
model name\t: {name}
flags\t\t: fpu avx2 avx512f

processor\t: 1
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: {model}
model name\t: {name}
"""


def cpuinfo(vendor="AuthenticAMD", family=25, model=17, name="AMD EPYC"):
    return CPUINFO.format(vendor=vendor, family=family, model=model, name=name)


def test_cpu_from_cpuinfo_text():
    c = machine.cpu(cpuinfo())
    assert (c.vendor, c.model_name, c.family, c.model, c.cpus) == (
        "AuthenticAMD", "AMD EPYC", 25, 17, 2)
    assert c.microarchitecture == "Zen 4"


def test_cpu_without_cpuinfo_fields():
    c = machine.cpu("")  # not Linux: no fields at all
    assert c.family is None and c.model is None and c.microarchitecture is None
    assert c.cpus >= 1 and isinstance(c.model_name, str)
    assert machine.slug(c).endswith(f"-{c.cpus}cpu")


def test_this_machine_parses():
    c = machine.cpu()
    assert c.cpus >= 1 and c.model_name


@pytest.mark.parametrize("family, model, arch", [
    (23, 0x01, "Zen"), (23, 0x31, "Zen 2"), (25, 0x01, "Zen 3"), (25, 0x21, "Zen 3"),
    (25, 0x11, "Zen 4"), (25, 0x61, "Zen 4"), (25, 0xA0, "Zen 4"), (26, 0x02, "Zen 5"),
    (26, 0x44, "Zen 5"), (26, 0x50, "Zen 6"), (26, 0x30, None), (24, 0, None)])
def test_amd_generations(family, model, arch):
    assert machine.microarchitecture("AuthenticAMD", family, model) == arch


def test_other_vendors_have_no_generation():
    assert machine.microarchitecture("GenuineIntel", 6, 143) is None
    assert machine.microarchitecture("AuthenticAMD", None, 17) is None


def test_report_names_tell_zen4_and_zen5_apart():
    zen4 = machine.slug(machine.cpu(cpuinfo(family=25, model=17)))
    zen5 = machine.slug(machine.cpu(cpuinfo(family=26, model=2)))
    assert zen4 == "amd-epyc-zen4-f25m17-2cpu"
    assert zen5 == "amd-epyc-zen5-f26m2-2cpu"
    # A full model name keeps its first words; an Intel CPU keeps family and model.
    xeon = machine.cpu(cpuinfo("GenuineIntel", 6, 143,
                               "Intel(R) Xeon(R) Platinum 8488C"))
    assert machine.slug(xeon) == "intel-r-xeon-r-f6m143-2cpu"
    named = machine.cpu(cpuinfo(family=26, model=2, name="AMD EPYC 9R45 Zen5 CPU"))
    assert machine.slug(named) == "amd-epyc-9r45-zen5-f26m2-2cpu"  # "zen5" not twice


@pytest.mark.parametrize("ymm, zmm, expected", [
    (117.0, 232.0, machine.FULL_WIDTH),   # Zen 5 (ANCHORS.md)
    (118.0, 118.0, machine.HALF_WIDTH),   # Zen 4
    (118.0, 112.0, machine.HALF_WIDTH),   # noise below
    (100.0, 141.5, machine.FULL_WIDTH),   # at the threshold, sqrt(2)
    (100.0, 141.0, machine.HALF_WIDTH),
    (60.0, 150.0, machine.FULL_WIDTH),    # a noisy ymm probe still says full
    (118.0, None, machine.NO_AVX512),
    (None, None, None),                   # this machine, measured
])
def test_kind_from_given_peaks(ymm, zmm, expected):
    if expected is None:
        assert machine.kind() in (machine.FULL_WIDTH, machine.HALF_WIDTH, machine.NO_AVX512)
    else:
        assert machine.kind(ymm, zmm) == expected


@pytest.mark.parametrize("ymm, zmm", [(0.0, 100.0), (100.0, -1.0), (float("nan"), 1.0)])
def test_kind_rejects_non_positive_peaks(ymm, zmm):
    with pytest.raises(ValueError, match="peak must be positive"):
        machine.kind(ymm, zmm)


def test_probes_give_positive_cached_peaks():
    p = machine.peaks()
    supported = _core.isas_supported()
    assert (p["ymm"] is None) == ("avx2" not in supported)
    assert (p["zmm"] is None) == ("avx512" not in supported)
    for v in p.values():
        assert v is None or (math.isfinite(v) and v > 0)
    assert machine.peaks() == p  # measured once per process
    active = machine.peak_gflops()
    assert active > 0 and active == machine.peak_gflops(_core.get_isa())
    assert bench.peak_gflops(1) == active


def test_peak_probe_of_each_isa(isa):
    # The C++ probe of a named table, whichever is active (with its self-check).
    for name in _core.isas_supported():
        assert _core.measure_peak_gflops(1, 0.01, name) > 0


def test_peak_probe_rejects_unknown_isa():
    with pytest.raises(ValueError, match="unknown ISA 'sse9'"):
        _core.measure_peak_gflops(1, 0.01, "sse9")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        machine.peak_gflops("scalar", 0)


def test_describe_and_report_sentence():
    d = machine.describe()
    assert set(d) == {"cpu", "cpus", "ymm peak", "zmm peak", "kind", "slug"}
    assert d["kind"] == machine.kind() and d["slug"] == machine.slug()
    text = bench.peaks_text(1)
    assert "ymm" in text and "zmm" in text and d["kind"] in text
    width = {"avx512": "zmm", "avx2": "ymm"}.get(_core.get_isa(), "scalar")
    assert f"divide by the {width} peak" in text


def test_command_line_info_prints_the_machine():
    r = subprocess.run([sys.executable, "-m", "convcore", "info"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    for key in ("cpu", "ymm peak", "zmm peak", "kind", "slug"):
        assert f"{key}: " in r.stdout
    assert machine.slug() in r.stdout


def test_gemm_kernel_probe_every_isa():
    # The micro-kernel alone (with its self-check: every output exactly KC).
    for name in _core.isas_supported():
        seconds = 0.002 if name == "scalar" else 0.01
        assert _core.measure_gemm_kernel_gflops(seconds, name) > 0
    with pytest.raises(ValueError, match="seconds must be in"):
        _core.measure_gemm_kernel_gflops(0.0)
