"""Flush-to-zero for float32 kernels: Numba intrinsics that read and write the x86 SSE control
register MXCSR, whose FTZ (bit 15) and DAZ (bit 6) bits make the CPU treat every subnormal input
and result as zero.

Why: on the double well y decays towards 0 and, in float32, enters the subnormal range (|v| < 2^-126
= 1.18e-38; y^2 much earlier) after about 1700 steps of momentum; subnormal arithmetic takes a
microcode assist per operation and the kernel slows many times over. A float32 kernel sets both bits
at the start of each block of particles and restores the thread's previous MXCSR at its end, so no
other code on that thread (numpy, torch, the interpreter) sees the change.

``AVAILABLE`` is False off x86 (the kernels then run without the flush).
"""

from __future__ import annotations

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

AVAILABLE = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
FTZ_DAZ = 0x8040  # MXCSR bits: flush-to-zero (15) and denormals-are-zero (6)


def _mxcsr_call(builder, name: str, slot) -> None:
    i8p = ir.IntType(8).as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i8p])
    fn = cgutils.get_or_insert_function(builder.module, fnty, name)
    builder.call(fn, [builder.bitcast(slot, i8p)])


@intrinsic
def get_mxcsr(typingctx):
    """The MXCSR register of the calling thread (uint32)."""
    sig = types.uint32()

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.load(slot)

    return sig, codegen


@intrinsic
def set_mxcsr(typingctx, value):
    """Write ``value`` (uint32) to the MXCSR register of the calling thread; returns 0."""
    sig = types.uint32(types.uint32)

    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once(builder, ir.IntType(32))
        builder.store(args[0], slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_constant(types.uint32, 0)

    return sig, codegen
