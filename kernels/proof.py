"""Proof of work for generated kernels: static checks of the source, and a log of the torch ops that ran.

``static_findings(source, reference_source)`` reads a generated ``model_new.py`` with ``ast`` (nothing is
imported) and returns one-line findings, the first of which rejects the candidate: it must define a
``@triton.jit`` kernel and launch it; it must not refer to the reference ``Model`` or subclass anything
but ``nn.Module``, call a torch op that does the whole computation (a fixed list of library ops plus the
ops the reference's own ``forward`` calls), wrap code in ``try``, import anything but torch, triton and a
few pure standard-library modules, read files or the environment, start threads, patch attributes of
modules, keep state across calls, read tensor values on the host, or use side streams, timers,
``torch.compile`` or torch internals. See docs/measuring.md for why each rule exists.

``OpLog`` (a ``TorchFunctionMode``) counts the torch calls a forward makes, outside Triton launches and
leaving out calls on ``meta`` tensors (shape inference); on a GPU ``torch.profiler`` adds the device
kernels that ran (``gpu_kernels``). The evaluation worker logs the candidate this way, and the trusted
parent logs the reference the same way.

Imports only the standard library and torch: the evaluation worker imports this module.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from torch.overrides import TorchFunctionMode

# Torch ops that do a whole GEMM, convolution, normalisation, attention or scan: never allowed in host code.
LIBRARY_OPS = frozenset(
    "matmul mm bmm addmm addmv addbmm baddbmm einsum linear bilinear tensordot inner outer dot vdot mv "
    "matrix_power chain_matmul conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d "
    "convolution softmax log_softmax layer_norm rms_norm group_norm batch_norm instance_norm "
    "scaled_dot_product_attention multi_head_attention_forward cumsum cumprod logcumsumexp "
    "_softmax _log_softmax native_layer_norm native_batch_norm baddbmm_ addmm_".split()
)
# Layout, allocation and metadata calls that are fine in host code even where the reference calls them.
HOST_OK = frozenset(
    "empty empty_like zeros zeros_like ones ones_like full full_like new_empty new_zeros new_full arange "
    "contiguous view view_as reshape reshape_as flatten unflatten squeeze unsqueeze expand expand_as t "
    "transpose permute stride size numel dim shape is_contiguous to type_as float half bfloat16 double "
    "int long bool element_size device dtype cdiv next_power_of_2 max min len range tuple list dict int "
    "float abs round divmod isinstance super Parameter empty_strided as_strided chunk split unbind "
    "__init__ register_buffer register_parameter parameters named_parameters".split()
)
ALLOWED_IMPORTS = frozenset(
    "torch triton math typing dataclasses __future__ itertools operator numbers enum collections".split()
)
_PURE_PYTHON = {"math", "operator", "itertools", "triton", "builtins", "typing", "collections", "enum", "numbers"}
_THREADS = {"threading", "_thread", "multiprocessing", "concurrent", "asyncio"}
_ESCAPES = {"ctypes", "cffi", "subprocess", "signal", "socket", "mmap", "resource", "pty", "ptrace"}
_FILES = {"os", "sys", "io", "pathlib", "shutil", "glob", "tempfile", "pickle", "marshal", "shelve", "builtins"}
_TIMERS = {"time", "timeit"}
_DYNAMIC = {"exec": "runs dynamic code (exec)", "eval": "runs dynamic code (eval)",
            "compile": "runs dynamic code (compile)", "__import__": "imports dynamically (__import__)",
            "open": "reads files (open)", "setattr": "patches attributes at run time (setattr)",
            "delattr": "patches attributes at run time (delattr)", "globals": "reaches into globals()",
            "vars": "reaches into vars()", "id": "keys on input identity (id())", "input": "reads stdin",
            "exit": "ends the process (exit)", "quit": "ends the process (quit)",
            "SystemExit": "ends the process (SystemExit)", "breakpoint": "stops in a debugger"}
_HOST_READS = {"item", "tolist", "numpy", "cpu", "any", "all", "equal", "allclose", "nonzero", "unique",
               "isclose", "is_nonzero"}
_MODULE_ROOTS = {"torch", "triton", "tl", "nn", "F", "time", "math", "np"}
_DUNDER_OK = {"__init__", "__name__", "__qualname__", "__doc__"}


def _dotted(node: ast.AST) -> str:
    """``torch.nn.functional.softmax`` for an attribute chain, '' for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return ""


def _is_jit(fn: ast.FunctionDef) -> bool:
    for deco in fn.decorator_list:
        target = deco.func if isinstance(deco, ast.Call) else deco
        if _dotted(target).split(".")[-1] in {"jit", "autotune", "heuristics"}:
            return True
    return False


def reference_ops(reference_source: str) -> set[str]:
    """The call names in the reference ``Model``'s methods (``softmax``, ``relu``), minus layout calls."""
    try:
        tree = ast.parse(reference_source)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Model"):
        for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name != "__init__"):
            for call in (c for c in ast.walk(fn) if isinstance(c, ast.Call)):
                name = _dotted(call.func).split(".")[-1] if _dotted(call.func) else getattr(call.func, "attr", "")
                if name and name not in HOST_OK and not name.startswith("self"):
                    names.add(name)
    return names


@dataclass
class _Scan:
    forbidden_calls: set[str]
    findings: list[str] = field(default_factory=list)
    kernels: list[str] = field(default_factory=list)
    launched: set[str] = field(default_factory=set)
    submodules: set[str] = field(default_factory=set)
    local_defs: set[str] = field(default_factory=set)  # functions and classes the source defines itself
    module_names: set[str] = field(default_factory=set)  # names bound to modules or their attributes

    def add(self, text: str) -> None:
        if text not in self.findings:
            self.findings.append(text)


def _check_import(scan: _Scan, module: str) -> None:
    root = module.split(".")[0]
    if root in _THREADS:
        scan.add(f"imports {module}: starts threads or processes")
    elif root in _ESCAPES:
        scan.add(f"imports {module}: escapes the sandbox (ctypes, subprocess and the like)")
    elif root in _FILES:
        scan.add(f"imports {module}: reads files or the environment")
    elif root in _TIMERS:
        scan.add(f"imports {module}: touches the timer")
    elif root == "importlib":
        scan.add(f"imports {module}: imports modules dynamically (the reference?)")
    elif root not in ALLOWED_IMPORTS:
        scan.add(f"imports {module}, which is not torch, triton or a pure standard-library module "
                 "(the reference problem?)")
    elif module.startswith(("torch.utils.cpp_extension", "torch.cuda", "torch.backends", "torch._")):
        scan.add(f"imports {module}: extensions, streams, precision flags or internals are not allowed")


def _check_call(scan: _Scan, node: ast.Call, in_class_method: str) -> None:
    name = _dotted(node.func)
    last = name.split(".")[-1] if name else (node.func.attr if isinstance(node.func, ast.Attribute) else "")
    if name in _DYNAMIC:
        scan.add(_DYNAMIC[name])
    if isinstance(node.func, ast.Subscript):  # kernel[grid](...)
        scan.launched.add(_dotted(node.func.value))
    if name.endswith(".run") or name.endswith(".warmup"):
        scan.launched.add(name.rsplit(".", 1)[0])
    # Shape inference on meta tensors, and Python's own math (math.prod), compute nothing on the data.
    meta = bool(node.args) and all(_meta_arg(a) for a in node.args) or name.split(".")[0] in _PURE_PYTHON
    if last in LIBRARY_OPS and not meta:
        scan.add(f"calls {name or last}: a library op doing the computation its Triton kernel should do")
    elif last in scan.forbidden_calls and last not in HOST_OK and name not in scan.local_defs and not meta:
        scan.add(f"calls {name or last}, the op the reference computes with (the kernel must do the work)")
    if last in _HOST_READS and in_class_method != "__init__":
        scan.add(f"reads tensor values on the host ({name or last}()): a data-dependent shortcut")
    if name.startswith("torch.cuda.") and last in {"Stream", "stream", "set_stream", "ExternalStream", "graph",
                                                   "CUDAGraph"}:
        scan.add(f"uses {name}: work on a side stream or a graph escapes the timer")
    elif name.startswith("torch.cuda.") and last in {"Event", "synchronize", "_sleep"}:
        scan.add(f"uses {name}: touches the timer")
    if name.startswith("torch.utils.cpp_extension"):
        scan.add(f"calls {name}: builds a C++/CUDA extension instead of a Triton kernel")
    if name.startswith(("torch.compile", "torch.jit", "torch.ops", "torch._", "torch.library")):
        scan.add(f"calls {name}: torch.compile, TorchScript or torch internals instead of its own kernel")
    if name.startswith("torch.backends") or last == "set_float32_matmul_precision":
        scan.add(f"calls {name}: changes precision flags")
    if in_class_method not in ("", "__init__") and name.startswith("self.") and name.count(".") == 1 \
            and name[5:] in scan.submodules:
        scan.add(f"calls the library module self.{name[5:]} in forward instead of its own kernel")


def _module_names(tree: ast.Module) -> set[str]:
    """Names bound by imports (``import torch as T``), and names assigned from them (``E = T.cuda.Event``)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {a.asname or a.name for a in node.names}
    for node in tree.body:  # module-level aliases of module attributes
        if isinstance(node, ast.Assign) and _dotted(node.value).split(".")[0] in names | _MODULE_ROOTS:
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _check_assign_target(scan: _Scan, target: ast.AST, method: str) -> None:
    base = target.value if isinstance(target, ast.Subscript) else target
    dotted = _dotted(base)
    if isinstance(base, ast.Attribute) and dotted.split(".")[0] in _MODULE_ROOTS | scan.module_names:
        scan.add(f"patches {dotted}: assigning to a module or library attribute")
    elif method not in ("", "__init__") and dotted.startswith("self."):
        scan.add(f"keeps state across calls: {method} assigns {dotted} (an output cache)")


def static_findings(source: str, reference_source: str = "") -> list[str]:
    """One-line reasons to reject ``source`` (empty when it passes); SyntaxError propagates to the caller."""
    tree = ast.parse(source)
    scan = _Scan(forbidden_calls=reference_ops(reference_source))
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    scan.local_defs = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    scan.module_names = _module_names(tree)
    model_new = next((c for c in classes if c.name == "ModelNew"), None)
    if model_new is not None:
        for base in model_new.bases:
            if _dotted(base) not in {"nn.Module", "torch.nn.Module", "Module"}:
                scan.add(f"ModelNew subclasses {_dotted(base) or ast.unparse(base)}, not nn.Module (the reference?)")
        for fn in (n for n in model_new.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"):
            for node in ast.walk(fn):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
                    callee = _dotted(node.value.func)
                    if callee.startswith(("nn.", "torch.nn.")) and callee.split(".")[-1] not in {"Parameter",
                                                                                               "ParameterList"}:
                        scan.submodules |= {_dotted(t)[5:] for t in node.targets if _dotted(t).startswith("self.")}
    jit_bodies: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and _is_jit(node):
            scan.kernels.append(node.name)
            jit_bodies |= {id(n) for n in ast.walk(node)}
    methods = {id(n): fn.name for c in classes for fn in c.body if isinstance(fn, ast.FunctionDef)
               for n in ast.walk(fn)}
    for node in ast.walk(tree):
        if id(node) in jit_bodies:
            continue
        method = methods.get(id(node), "")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or "."]
            for mod in mods:
                _check_import(scan, mod if not (isinstance(node, ast.ImportFrom) and node.level) else "." + mod)
        elif isinstance(node, ast.Name) and node.id == "SystemExit":
            scan.add(_DYNAMIC["SystemExit"])
        elif isinstance(node, ast.Name) and node.id in {"Model", "get_inputs", "get_init_inputs"}:
            scan.add(f"refers to the reference's {node.id}: the candidate must not use the reference")
        elif isinstance(node, (ast.Try, ast.TryStar)):
            scan.add("wraps code in try/except: a fallback path the checks would not see")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            scan.add(f"keeps state across calls ({type(node).__name__.lower()} {', '.join(node.names)})")
        elif isinstance(node, ast.Call):
            _check_call(scan, node, method)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                _check_assign_target(scan, target, method)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            scan.add("uses the @ operator: a library matmul instead of its own kernel")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr not in _DUNDER_OK:
            scan.add(f"reaches into internals ({node.attr})")
        elif isinstance(node, ast.Name) and node.id.startswith("__") and node.id not in _DUNDER_OK:
            scan.add(f"reaches into internals ({node.id})")
        elif isinstance(node, ast.Attribute) and node.attr in {"data_ptr", "environ", "getenv"}:
            what = "keys on input identity" if node.attr == "data_ptr" else "reads the environment"
            scan.add(f"{what} ({node.attr})")
    if model_new is None:
        scan.findings.insert(0, "defines no class ModelNew")
    elif not scan.kernels:
        scan.findings.insert(0, "defines no @triton.jit kernel: the work must be done by its own Triton kernel")
    elif not scan.launched & set(scan.kernels):
        scan.findings.insert(0, f"defines Triton kernel(s) {', '.join(scan.kernels)} but never launches one")
    return scan.findings


def defined_kernels(source: str) -> list[str]:
    """The names of the ``@triton.jit`` functions in ``source`` (empty when it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and _is_jit(n)]


def _meta_arg(node: ast.AST) -> bool:
    """``torch.empty(shape, device='meta')``: a tensor without data, used for shape inference only."""
    return isinstance(node, ast.Call) and any(
        k.arg == "device" and isinstance(k.value, ast.Constant) and k.value.value == "meta" for k in node.keywords
    )


def _is_meta(x: Any) -> bool:
    return getattr(getattr(x, "device", None), "type", None) == "meta"


def _op_name(func: Any) -> str:
    name = getattr(func, "__name__", "") or str(func)
    if name.startswith("__") and name.endswith("__"):
        name = name[2:-2]
        name = name[1:] if name.startswith(("r", "i")) and name[1:] in {"matmul", "add", "mul", "sub", "truediv"} else name
    return name


class OpLog(TorchFunctionMode):
    """Counts the torch calls made while active (``torch.softmax``, ``Tensor.cumsum``, ``x @ y`` as
    ``matmul``), except while ``paused`` (a Triton launch: the interpreter's own data movement) and calls
    whose tensors are all on the ``meta`` device (shape inference, no computation)."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.paused = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        kwargs = kwargs or {}
        if not self.paused:
            tensors = [a for a in (*args, *kwargs.values()) if hasattr(a, "device")]
            if not tensors or not all(_is_meta(t) for t in tensors):
                self.ops[_op_name(func)] += 1
        return func(*args, **kwargs)


def profiler() -> Any:
    """The torch profiler for the device kernels a GPU ran (CPU ops are logged by ``OpLog``)."""
    import torch

    return torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA])


def gpu_kernels(prof: Any) -> Counter[str]:
    """The names of the device kernels in a finished profile, with how often each ran."""
    import torch

    return Counter(e.name for e in prof.events() if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA)
