"""The kernel-trace observer: did the candidate's own Triton kernels do the work, and no library kernel?

The kernel harness's generated-source worker records, while the candidate's ``forward`` runs, which
Triton kernels were launched (a hook on Triton's launch path, for compiled and interpreted kernels
alike), which aten ops torch dispatched outside those launches (a dispatch-mode log), and on a GPU the
device kernels ``torch.profiler`` saw. It writes them as ``trace`` in its result JSON. ``analyse`` turns a
trace into the proof-of-work verdict: at least one of the source's ``@triton.jit`` kernels ran; no
library GEMM, convolution, normalisation, softmax, scan or attention op ran (neither from a fixed list
nor one of the compute ops the reference itself dispatches); and no cuBLAS, cuDNN, CUTLASS or flash
attention kernel appears on the device.

The observer (``kernel_trace`` in ``[measure] observers``) reads the ``proof`` the evaluation adds to the
worker's result and reports ``trace.triton_launches``, ``trace.library_ops`` and a one-line note.
Imports only the standard library (and the observer base).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

from ..types import Measurement
from .base import Observer, add_to

if TYPE_CHECKING:
    from ..context import TrialContext

LIBRARY_ATEN = frozenset(
    "conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d group_norm batch_norm instance_norm "
    "bilinear inner outer chain_matmul matrix_power multi_head_attention_forward "
    "mm addmm bmm baddbmm matmul linear addmv mv dot vdot einsum tensordot convolution _convolution "
    "cudnn_convolution mkldnn_convolution convolution_overrideable _softmax softmax _log_softmax log_softmax "
    "native_layer_norm layer_norm _fused_rms_norm rms_norm native_batch_norm _native_batch_norm_legit "
    "native_group_norm cumsum cumprod logcumsumexp scaled_dot_product_attention _scaled_dot_product_flash_attention "
    "_scaled_dot_product_efficient_attention _scaled_dot_product_cudnn_attention "
    "_scaled_dot_product_flash_attention_for_cpu _efficient_attention_forward _flash_attention_forward".split()
)
# Allocation, copies and layout: fine in host code even where the reference dispatches them too.
TRIVIAL_ATEN = frozenset(
    "get getitem setitem len format repr bool float int index_put device dtype shape is_contiguous data_ptr "
    "element_size type new_tensor cuda cpu requires_grad_ "
    "empty empty_like empty_strided new_empty new_empty_strided zeros zeros_like zero_ ones ones_like full "
    "full_like fill_ new_zeros new_full new_ones arange copy_ _to_copy to clone view _unsafe_view reshape "
    "_reshape_alias as_strided detach alias expand t transpose permute select slice unsqueeze squeeze "
    "contiguous lift_fresh resize_ set_ split split_with_sizes chunk unbind unflatten flatten view_as "
    "expand_as _local_scalar_dense item is_nonzero size stride sym_size sym_stride numel dim".split()
)
LIBRARY_KERNEL = re.compile(
    r"gemm|gemv|cublas|cutlass|xmma|cudnn|implicit_convolve|conv2d|conv3d|convolve|winograd|flash|fmha|"
    r"attention|softmax_warp|cunn_SoftMax|layer_norm_kernel|LayerNorm|batch_norm|splitK|scan_kernel",
    re.IGNORECASE,
)


def analyse(trace: dict[str, Any], kernels: list[str], reference_ops: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """The proof from a worker's trace: ``triton_kernels`` (the source's that ran), ``library_kernels``
    (library ops or device kernels that ran) and ``findings`` (one line each; empty when it passes)."""
    launched = {str(k): int(v) for k, v in (trace.get("triton_kernels") or {}).items()}
    ops = {str(k): int(v) for k, v in (trace.get("aten_ops") or {}).items()}
    gpu = {str(k): int(v) for k, v in (trace.get("gpu_kernels") or {}).items()}
    ran = sorted(k for k in launched if k in kernels)
    forbidden = LIBRARY_ATEN | (set(reference_ops) - TRIVIAL_ATEN)
    library = sorted(f"torch.{op}" for op in ops if op in forbidden)
    library += sorted(name for name in gpu if LIBRARY_KERNEL.search(name) and name not in kernels)
    findings = []
    if not ran:
        seen = f" (launched: {', '.join(sorted(launched))})" if launched else ""
        findings.append(f"the trace shows no Triton kernel of the source ran{seen}: the work was done elsewhere")
    if library:
        shown = ", ".join(library[:4]) + (" ..." if len(library) > 4 else "")
        findings.append(f"the trace shows library op(s) {shown} ran in forward instead of its own kernel")
    return {"triton_kernels": ran, "triton_launches": sum(launched.values()), "library_kernels": library,
            "aten_ops": ops, "gpu_kernels": sorted(gpu), "findings": findings}


class KernelTraceObserver(Observer):
    """Adds ``trace.triton_launches`` and ``trace.library_ops`` and a note from the evaluation's proof."""

    name: ClassVar[str] = "kernel_trace"
    passive: ClassVar[bool] = True

    def finish(self, measurement: Measurement, ctx: TrialContext) -> Measurement:
        proofs = [r.result.result["proof"] for r in ctx.runs
                  if isinstance(r.result.result, dict) and isinstance(r.result.result.get("proof"), dict)]
        if not proofs:
            return measurement
        p = proofs[-1]
        metrics = {"trace.triton_launches": float(p.get("triton_launches", 0)),
                   "trace.library_ops": float(len(p.get("library_kernels", [])))}
        note = "; ".join(p.get("findings", [])) or (
            f"kernel trace: {', '.join(p.get('triton_kernels', []))} ran; no library GEMM, convolution or attention")
        return add_to(measurement, metrics=metrics, notes=[note])
