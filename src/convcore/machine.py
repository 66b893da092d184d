"""The machine convcore runs on: its CPU, its measured FMA peaks, and which kind it is.

The same AVX-512 code runs at two speeds. Zen 4 executes a 512-bit FMA as two 256-bit
halves, so its zmm and ymm peaks are equal; Zen 5 and the Intel Xeons with two 512-bit
FMA units execute it whole, so the zmm peak is twice the ymm one. Which kind a machine is
decides what "fraction of peak" means and which kernels pay, so convcore measures it
rather than guessing it from the model name: :func:`peak_gflops` runs the C++ FMA probe of
one instruction set (12 independent FMA chains per thread, the best of repeated runs) and
:func:`kind` compares the two widths.

``python -m convcore info`` prints :func:`describe`; ``python -m convcore bench`` names its
report after :func:`slug` and divides by :func:`peak_gflops` of the ISA in use.

>>> from convcore import machine
>>> machine.kind(ymm=117.0, zmm=232.0)
'full-width AVX-512'
>>> machine.kind(ymm=118.0, zmm=118.5)
'half-width AVX-512'
>>> machine.kind(ymm=118.0, zmm=None)
'no AVX-512'
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import platform
from typing import Dict, Iterator, Optional

from convcore import _core

__all__ = ["Cpu", "FULL_WIDTH", "HALF_WIDTH", "NO_AVX512", "cpu", "describe", "kind",
           "microarchitecture", "peak_gflops", "peaks", "slug"]

#: :func:`kind` of a machine whose zmm FMA peak is about twice its ymm one.
FULL_WIDTH = "full-width AVX-512"
#: :func:`kind` of a machine that runs AVX-512 at the ymm peak (512-bit FMAs in halves).
HALF_WIDTH = "half-width AVX-512"
#: :func:`kind` of a machine (or a build) without AVX-512 kernels.
NO_AVX512 = "no AVX-512"

#: zmm/ymm peak ratio from which a machine counts as full width: the geometric middle
#: of the two kinds' ratios (1 and 2), so noise of up to 40% either way cannot flip it.
FULL_WIDTH_RATIO = 2 ** 0.5

#: Seconds each probe runs (the best of its runs is kept).
PROBE_SECONDS = 0.3

# AMD's Zen generations by (family, model range), as Linux's arch/x86/kernel/cpu/amd.c
# sorts them; a CPU outside the list is named by family and model only.
_AMD_ZEN = (
    (0x17, ((0x00, 0x2F), (0x50, 0x5F)), "Zen"),
    (0x17, ((0x30, 0x4F), (0x60, 0x7F), (0x90, 0x91), (0xA0, 0xAF)), "Zen 2"),
    (0x19, ((0x00, 0x0F), (0x20, 0x5F)), "Zen 3"),
    (0x19, ((0x10, 0x1F), (0x60, 0xAF)), "Zen 4"),
    (0x1A, ((0x00, 0x2F), (0x40, 0x4F), (0x60, 0x7F)), "Zen 5"),
    (0x1A, ((0x50, 0x5F), (0x80, 0xAF), (0xC0, 0xCF)), "Zen 6"),
)


@dataclasses.dataclass(frozen=True)
class Cpu:
    """What the CPU says about itself (``/proc/cpuinfo`` on Linux).

    Attributes
    ----------
    vendor : str
        ``"AuthenticAMD"``, ``"GenuineIntel"``, ... (empty when unknown).
    model_name : str
        The marketing name, e.g. ``"AMD EPYC 9R14 96-Core Processor"``; virtual machines
        often shorten it (``"AMD EPYC"``), which is why the family and model are kept too.
    family, model : int or None
        The CPUID family and model (decimal, as ``/proc/cpuinfo`` prints them); None
        where the system does not tell.
    cpus : int
        Logical CPUs listed.
    """

    vendor: str
    model_name: str
    family: Optional[int]
    model: Optional[int]
    cpus: int

    @property
    def microarchitecture(self) -> Optional[str]:
        """:func:`microarchitecture` of this CPU, e.g. ``"Zen 4"``, or None."""
        return microarchitecture(self.vendor, self.family, self.model)


def cpu(cpuinfo: Optional[str] = None) -> Cpu:
    """The CPU, parsed from the text of ``/proc/cpuinfo`` (read when not given).

    Parameters
    ----------
    cpuinfo : str, optional
        The text of a ``/proc/cpuinfo``; by default this machine's. Where it cannot be
        read, :func:`platform.processor` names the CPU and family and model are None.

    Returns
    -------
    Cpu

    Examples
    --------
    >>> from convcore.machine import cpu
    >>> c = cpu("vendor_id\\t: AuthenticAMD\\ncpu family\\t: 25\\nmodel\\t\\t: 17\\n"
    ...         "model name\\t: AMD EPYC\\n")
    >>> c.family, c.model, c.microarchitecture
    (25, 17, 'Zen 4')
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            cpuinfo = ""
    fields: Dict[str, str] = {}
    cpus = 0
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip()
        if key == "processor":
            cpus += 1
        fields.setdefault(key, value.strip())  # the first processor speaks for all

    def integer(key: str) -> Optional[int]:
        with contextlib.suppress(KeyError, ValueError):
            return int(fields[key])
        return None

    return Cpu(vendor=fields.get("vendor_id", ""),
               model_name=fields.get("model name") or platform.processor()
               or platform.machine(),
               family=integer("cpu family"), model=integer("model"),
               cpus=cpus or os.cpu_count() or 1)


def microarchitecture(vendor: str, family: Optional[int], model: Optional[int]
                      ) -> Optional[str]:
    """The AMD Zen generation of a CPUID vendor, family and model, or None.

    Parameters
    ----------
    vendor : str
        The CPUID vendor string (``"AuthenticAMD"`` for AMD).
    family, model : int or None
        The CPUID family and model.

    Returns
    -------
    str or None
        ``"Zen"`` to ``"Zen 6"`` for AMD families 23, 25 and 26 (the model ranges Linux
        uses); None for other vendors and unknown models, which keep their family and
        model numbers in :func:`slug`.

    Examples
    --------
    >>> from convcore.machine import microarchitecture
    >>> microarchitecture("AuthenticAMD", 26, 2), microarchitecture("GenuineIntel", 6, 143)
    ('Zen 5', None)
    """
    if vendor != "AuthenticAMD" or family is None or model is None:
        return None
    for fam, ranges, name in _AMD_ZEN:
        if fam == family and any(lo <= model <= hi for lo, hi in ranges):
            return name
    return None


def slug(cpu_: Optional[Cpu] = None) -> str:
    """A folder name for benchmark results from this CPU: name, generation, family/model.

    Two machines whose model names read the same (a virtual machine's ``"AMD EPYC"``)
    get different names when their family or model differ.

    Parameters
    ----------
    cpu_ : Cpu, optional
        By default this machine's :func:`cpu`.

    Returns
    -------
    str
        Lower-case words of the model name (at most four), the generation when known,
        ``f<family>m<model>`` and the CPU count, joined by ``-``.

    Examples
    --------
    >>> from convcore.machine import cpu, slug
    >>> text = "processor : 0\\nvendor_id : AuthenticAMD\\ncpu family : {}\\nmodel : {}\\n" \\
    ...        "model name : AMD EPYC\\nprocessor : 1\\n"
    >>> slug(cpu(text.format(25, 17))), slug(cpu(text.format(26, 2)))
    ('amd-epyc-zen4-f25m17-2cpu', 'amd-epyc-zen5-f26m2-2cpu')
    """
    c = cpu() if cpu_ is None else cpu_
    words = "".join(ch if ch.isalnum() else " " for ch in c.model_name.lower()).split()[:4]
    arch = c.microarchitecture
    if arch is not None:
        tag = arch.lower().replace(" ", "")
        if tag not in words:
            words.append(tag)
    if c.family is not None and c.model is not None:
        words.append(f"f{c.family}m{c.model}")
    return "-".join(words + [f"{c.cpus}cpu"])


@contextlib.contextmanager
def _pool_of_at_least(n: int) -> Iterator[None]:
    """convcore's thread count raised to ``n`` for the probe, then restored."""
    previous = _core.get_num_threads()
    if previous < n:
        _core.set_num_threads(n)
    try:
        yield
    finally:
        _core.set_num_threads(previous)


def peak_gflops(isa: Optional[str] = None, threads: int = 1) -> float:
    """The float32 FMA peak of ``threads`` threads with ``isa``'s vectors, in GFLOP/s.

    Measured once per process, ISA and thread count (then cached): the C++ probe runs 12
    independent FMA chains per thread for about 0.3 s and keeps its fastest run.

    Parameters
    ----------
    isa : str, optional
        ``"avx512"`` (zmm FMAs), ``"avx2"`` (ymm FMAs) or ``"scalar"`` (what the baseline
        build reaches); by default the ISA in use (``convcore.info()["isa"]``).
    threads : int, optional
        Threads running the probe at once (1 by default: the peak of one core).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For an ISA this build lacks or this CPU cannot run, or ``threads < 1``.
    """
    if threads < 1:
        raise ValueError(f"peak_gflops: threads must be >= 1, got {threads}")
    return _measure(_core.get_isa() if isa is None else isa, threads)


@functools.lru_cache(maxsize=None)
def _measure(isa: str, threads: int) -> float:
    with _pool_of_at_least(threads):
        return _core.measure_peak_gflops(threads, PROBE_SECONDS, isa)


def peaks(threads: int = 1) -> Dict[str, Optional[float]]:
    """The measured ymm and zmm FMA peaks of ``threads`` threads (GFLOP/s, cached).

    Returns
    -------
    dict
        ``{"ymm": ..., "zmm": ...}``: the AVX2 and AVX-512 probes' :func:`peak_gflops`;
        None for an instruction set this build or CPU lacks.
    """
    supported = _core.isas_supported()
    return {"ymm": peak_gflops("avx2", threads) if "avx2" in supported else None,
            "zmm": peak_gflops("avx512", threads) if "avx512" in supported else None}


def kind(ymm: Optional[float] = None, zmm: Optional[float] = None) -> str:
    """Which kind of machine: full-width AVX-512, half-width AVX-512, or none.

    Parameters
    ----------
    ymm, zmm : float or None
        The ymm (AVX2) and zmm (AVX-512) FMA peaks in GFLOP/s, None where the machine or
        build lacks them. Both omitted: this machine's, measured (:func:`peaks`).

    Returns
    -------
    str
        :data:`FULL_WIDTH` when ``zmm / ymm`` is at least :data:`FULL_WIDTH_RATIO`
        (about 2 on Zen 5 and the Xeons with two 512-bit FMA units), :data:`HALF_WIDTH`
        below it (about 1 on Zen 4), :data:`NO_AVX512` without a zmm figure.

    Raises
    ------
    ValueError
        A peak that is not positive.
    """
    if ymm is None and zmm is None:
        measured = peaks()
        ymm, zmm = measured["ymm"], measured["zmm"]
    for label, value in (("ymm", ymm), ("zmm", zmm)):
        if value is not None and not value > 0:
            raise ValueError(f"kind: the {label} peak must be positive, got {value}")
    if zmm is None:
        return NO_AVX512
    if ymm is None:  # AVX-512 without AVX2 does not exist; nothing to compare against
        return HALF_WIDTH
    return FULL_WIDTH if zmm / ymm >= FULL_WIDTH_RATIO else HALF_WIDTH


def describe(threads: int = 1) -> Dict[str, str]:
    """This machine as ``python -m convcore info`` and the benchmark reports print it.

    Parameters
    ----------
    threads : int, optional
        Threads the peaks are measured on (1: per core).

    Returns
    -------
    dict
        ``cpu`` (model name, generation, family and model), ``cpus``, ``ymm peak`` and
        ``zmm peak`` (GFLOP/s on ``threads`` threads, or "none"), ``kind`` (of
        :func:`kind`) and ``slug``.
    """
    c = cpu()
    measured = peaks(threads)
    name = c.model_name
    if c.microarchitecture is not None:
        name += f" ({c.microarchitecture})"
    if c.family is not None and c.model is not None:
        name += f", family {c.family} model {c.model}"
    per = "a core" if threads == 1 else f"{threads} threads"

    def show(v: Optional[float]) -> str:
        return "none" if v is None else f"{v:.1f} GFLOP/s {per}"

    return {"cpu": name, "cpus": str(c.cpus), "ymm peak": show(measured["ymm"]),
            "zmm peak": show(measured["zmm"]), "kind": kind(measured["ymm"], measured["zmm"]),
            "slug": slug(c)}
