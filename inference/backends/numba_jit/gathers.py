"""Table lookups as vector gathers, which LLVM will not emit on its own for Numba's loops.

The equalize stage looks every pixel up in its 256-bin cdf. LLVM's cost model keeps such loops scalar on this
project's CPUs, and with the lookup the whole loop (position, floor, blend) stays scalar. :func:`equalized_lanes`
writes :func:`.scalars.equalized` for :data:`LANES` pixels at once as LLVM vector code instead, with the lookups as
``llvm.masked.gather``: the same float64 operations in the same order, so the values are the same bits. Where the
target has AVX-512 (:data:`GATHERS`) a gather is one instruction; elsewhere LLVM would split it into scalar loads,
no faster than the kernels' own split loops, so the kernels then leave the lanes unused. The fused path's lookups
(raw value -> equalized value) take :func:`looked_up_lanes` the same way.
"""

from __future__ import annotations

import llvmlite.binding
import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

#: Pixels per :func:`equalized_lanes` call: 8 float64 lanes, one 512-bit register.
LANES = 8


def _target_has_avx512() -> bool:
    """Whether the CPU Numba compiles for has AVX-512F (``NUMBA_CPU_FEATURES`` if set, else the host's; no, where
    LLVM cannot tell the host's)."""
    try:
        features = numba.config.CPU_FEATURES or llvmlite.binding.get_host_cpu_features().flatten()
    except RuntimeError:
        return False
    return "+avx512f" in features.split(",")


#: Whether the kernels use :func:`equalized_lanes` and :func:`looked_up_lanes` (a compile-time constant of the
#: kernels that read it; Numba's on-disk cache is keyed by the CPU's features, from which it follows).
GATHERS = _target_has_avx512()


def _splat(builder: ir.IRBuilder, value: ir.Value, vector: ir.VectorType) -> ir.Value:
    """``value`` in every lane of ``vector``."""
    lane0 = builder.insert_element(ir.Constant(vector, None), value, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(lane0, ir.Constant(vector, None),
                                  ir.Constant(ir.VectorType(ir.IntType(32), vector.count), [0] * vector.count))


def _lanes_at(builder: ir.IRBuilder, data: ir.Value, start: ir.Value, vector: ir.VectorType) -> ir.Value:
    """A pointer to ``vector`` at element ``start`` of ``data`` (an array's data pointer)."""
    return builder.bitcast(builder.gep(data, [start]), vector.as_pointer())


def _array_of(value: types.Type, *dtypes: types.Type) -> bool:
    """Whether ``value`` is a Numba array type of one of ``dtypes``."""
    return isinstance(value, types.Array) and value.dtype in dtypes


def _gather(builder: ir.IRBuilder, address: ir.Value, indices: ir.Value, stride: int, element: ir.Type) -> ir.Value:
    """The ``element`` (``ir.DoubleType()`` or ``ir.FloatType()``) at ``address + stride * index`` for each lane's
    unsigned index (llvmlite has no vector GEP: the addresses are computed as integers)."""
    values, addresses = ir.VectorType(element, LANES), ir.VectorType(ir.IntType(64), LANES)
    base = _splat(builder, builder.ptrtoint(address, ir.IntType(64)), addresses)
    offsets = builder.mul(builder.zext(indices, addresses), ir.Constant(addresses, [stride] * LANES))
    pointers = builder.inttoptr(builder.add(base, offsets), ir.VectorType(element.as_pointer(), LANES))
    every_lane = ir.Constant(ir.VectorType(ir.IntType(1), LANES), [1] * LANES)
    name, alignment = ("f64", 8) if element == ir.DoubleType() else ("f32", 4)
    gather = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(values, [pointers.type, ir.IntType(32), every_lane.type, values]),
        f"llvm.masked.gather.v{LANES}{name}.v{LANES}p0")
    return builder.call(gather, [pointers, ir.Constant(ir.IntType(32), alignment), every_lane,
                                 ir.Constant(values, None)])


@intrinsic
def equalized_lanes(typingctx, row, out, start, lo, scale, pairs):
    """``out[start + l] = equalized(row[start + l], lo, scale, cdf, slopes)`` for the :data:`LANES` lanes ``l``
    (:func:`.scalars.equalized`), with ``pairs[k] = cdf[k] + 1j * slopes[k]`` (complex128) and ``row``, ``out``
    contiguous float32. No bounds checks: the caller keeps ``start + LANES`` within both rows."""
    if not (_array_of(row, types.float32) and _array_of(out, types.float32) and _array_of(pairs, types.complex128)
            and isinstance(start, types.Integer) and lo == scale == types.float64):
        return None

    def codegen(context, builder, signature, args):
        row_data, out_data, pairs_data = (context.make_array(signature.args[i])(context, builder, args[i]).data
                                          for i in (0, 1, 5))
        floats, doubles = ir.VectorType(ir.FloatType(), LANES), ir.VectorType(ir.DoubleType(), LANES)
        start, lo, scale = args[2], _splat(builder, args[3], doubles), _splat(builder, args[4], doubles)
        values = builder.load(_lanes_at(builder, row_data, start, floats), align=4)
        # scalars.position: min(max((v - lo) * scale - 0.5, 0.0), 255.0), as Numba's max and min select
        t = builder.fsub(builder.fmul(builder.fsub(builder.fpext(values, doubles), lo), scale),
                         ir.Constant(doubles, [0.5] * LANES))
        zero, last = ir.Constant(doubles, [0.0] * LANES), ir.Constant(doubles, [255.0] * LANES)
        t = builder.select(builder.fcmp_ordered(">", zero, t), zero, t)
        t = builder.select(builder.fcmp_ordered("<", last, t), last, t)
        floor = cgutils.get_or_insert_function(builder.module, ir.FunctionType(doubles, [doubles]),
                                               f"llvm.floor.v{LANES}f64")
        k = builder.call(floor, [t])
        bins = builder.fptoui(k, ir.VectorType(ir.IntType(32), LANES))
        cdf_address = builder.bitcast(pairs_data, ir.DoubleType().as_pointer())
        cdf = _gather(builder, cdf_address, bins, 16, ir.DoubleType())
        slopes = _gather(builder, builder.gep(cdf_address, [ir.Constant(ir.IntType(64), 1)]), bins, 16, ir.DoubleType())
        # scalars.blend: float32(base + fraction * slope), no fused multiply-add (Numba allows no contraction)
        blended = builder.fptrunc(builder.fadd(cdf, builder.fmul(builder.fsub(t, k), slopes)), floats)
        builder.store(blended, _lanes_at(builder, out_data, start, floats), align=4)
        return context.get_dummy_value()

    return types.void(row, out, start, lo, scale, pairs), codegen


@intrinsic
def looked_up_lanes(typingctx, indices, flip, table, out, start):
    """``out[start + l] = table[indices[start + l] ^ flip]`` for the :data:`LANES` lanes ``l``: unsigned 8- or 16-bit
    ``indices`` and ``flip``, float32 ``table`` and ``out`` (the fused path's raw value -> equalized value), all
    contiguous. No bounds checks: every index ``^ flip`` lies within ``table``, ``start + LANES`` within both rows."""
    if not (_array_of(indices, types.uint8, types.uint16) and flip == indices.dtype and _array_of(table, types.float32)
            and _array_of(out, types.float32) and isinstance(start, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        index_data, table_data, out_data = (context.make_array(signature.args[i])(context, builder, args[i]).data
                                            for i in (0, 2, 3))
        start, width = args[4], signature.args[0].dtype.bitwidth
        lanes = ir.VectorType(ir.IntType(width), LANES)
        loaded = builder.load(_lanes_at(builder, index_data, start, lanes), align=1)
        values = _gather(builder, table_data, builder.xor(loaded, _splat(builder, args[1], lanes)), 4, ir.FloatType())
        builder.store(values, _lanes_at(builder, out_data, start, ir.VectorType(ir.FloatType(), LANES)), align=4)
        return context.get_dummy_value()

    return types.void(indices, flip, table, out, start), codegen
