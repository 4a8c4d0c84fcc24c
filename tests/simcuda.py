"""A simulated CUDA device for CPU-only machines: ``with sim_cuda(): ...`` makes ``device="cuda"`` work.

Tensors "on cuda" are wrapper tensors (``SimTensor``) whose data live in a real CPU tensor and whose ``.device``
is ``meta`` (autograd needs a device guard, which a CPU-only build has for meta, not for cuda; every "meta" or
"cuda" device the code asks for means the simulated GPU, and ``torch.cuda.is_available()`` is True inside), so whole training runs, checkpoints and sampling loops run (``.item()``, ``multinomial`` and
``.tolist()`` included) -- and every operation first checks devices the way CUDA kernels do:

* a CPU tensor with dimensions meeting a cuda tensor in one op raises (0-dim CPU tensors are allowed only in
  pointwise ops, as CUDA's TensorIterator allows them; ``cat``/``stack``/``mm``/... refuse them);
* CPU index tensors may index a cuda tensor (as on CUDA), cuda indices may not index a CPU tensor;
* ``.numpy()`` / ``np.asarray`` of a cuda tensor raises (no host memory behind it);
* a CPU ``torch.Generator`` used for a cuda random op (or a cuda one for a CPU op) raises.

Not simulated: CUDA graphs and streams (``torch.cuda.CUDAGraph`` raises), cuDNN, the numerics of CUDA kernels,
``x.device.type == "cuda"`` branches (the device type reads "meta"). Where ATen has a meta-only path (one_hot,
the SDPA backend choice) or a Python binding needs a CUDA device guard (indexing, ``.to``, ``torch.tensor``),
the same result is computed with plain operations. Used by tests/test_device_audit.py.
"""
from __future__ import annotations

import contextlib
import warnings
from unittest import mock

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

aten = torch.ops.aten
CUDA = torch.device("meta")   # what a simulated cuda tensor reports (autograd needs a device guard; meta has one)
SIM_TYPES = ("cuda", "meta")       # device types that mean "the simulated GPU"
CPU = torch.device("cpu")


class DeviceMismatch(RuntimeError):
    """What CUDA would have raised ("Expected all tensors to be on the same device ...")."""


class SimTensor(torch.Tensor):
    elem: torch.Tensor

    @staticmethod
    def __new__(cls, elem: torch.Tensor, requires_grad: bool = False):
        r = torch.Tensor._make_wrapper_subclass(
            cls, elem.shape, strides=elem.stride(), storage_offset=elem.storage_offset(), dtype=elem.dtype,
            layout=elem.layout, device=CUDA, requires_grad=requires_grad)
        r.elem = elem
        return r

    __torch_function__ = torch._C._disabled_torch_function_impl

    def __repr__(self):
        return f"SimTensor(cuda, {self.elem!r})"

    def __reduce_ex__(self, proto):        # torch.save: written as CPU data (loaded with map_location="cpu" anyway)
        return self.elem.detach().clone().__reduce_ex__(proto)

    def numpy(self, *a, **k):
        raise TypeError("can't convert cuda:0 device type tensor to numpy. Use Tensor.cpu() to copy the tensor to "
                        "host memory first.")

    def __array__(self, *a, **k):
        return self.numpy()

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"SimTensor used outside sim_cuda() ({func})")


_Generator = torch.Generator


class SimGenerator(_Generator):
    """``torch.Generator(device="cuda")``: a CPU generator remembered as a cuda one."""

    def __new__(cls, device=None):
        return _Generator.__new__(cls)

    def __init__(self, device=None):
        super().__init__()
        self._sim_cuda = device is not None and torch.device(device).type in SIM_TYPES

    @property
    def device(self):
        return CUDA if self._sim_cuda else CPU


def _is_sim_gen(g) -> bool:
    return isinstance(g, SimGenerator) and g._sim_cuda


def _dev(t) -> str:
    return "cuda:0" if isinstance(t, SimTensor) else "cpu"


MIXED_OK = {aten.copy_.default, aten._to_copy.default, aten._copy_from.default, aten._copy_from_and_resize.default,
            aten._foreach_copy_.default, aten.set_.source_Tensor, aten.lift_fresh.default, aten.detach.default}
META_INPLACE = {"transpose_", "t_", "squeeze_", "unsqueeze_", "as_strided_", "swapdims_", "swapaxes_", "resize_"}
INDEX_OPS = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default, aten._index_put_impl_.default,
             aten._unsafe_index.Tensor, aten._unsafe_index_put.default}


class SimCudaMode(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.checks = 0

    def _fail(self, func, a, b):
        raise DeviceMismatch(f"Expected all tensors to be on the same device, but found at least two devices, {a} "
                             f"and {b}! (simulated CUDA, in {func})")

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        leaves, _ = tree_flatten((args, kwargs))
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        sims = [t for t in tensors if isinstance(t, SimTensor)]
        dev = kwargs.get("device")
        dev = torch.device(dev) if dev is not None else None
        to_cuda = dev is not None and dev.type in SIM_TYPES
        if to_cuda:
            kwargs["device"] = CPU
        self.checks += 1

        if func is aten._fused_sdp_choice.default:
            return int(torch.nn.attention.SDPBackend.MATH.value) if hasattr(torch.nn.attention.SDPBackend.MATH, "value") else 0
        if func in (aten._to_copy.default,):
            out_sim = to_cuda or (bool(sims) and dev is None)
        elif func in MIXED_OK:
            out_sim = bool(args) and isinstance(args[0], SimTensor)
        elif dev is not None and not sims:
            out_sim = to_cuda                     # a factory
        else:
            out_sim = bool(sims) or to_cuda
            if sims:
                plain = [t for t in tensors if not isinstance(t, SimTensor)]
                if func in INDEX_OPS:
                    if isinstance(args[0], SimTensor):   # CPU indices into a cuda tensor are fine; values are not
                        idx = {id(t) for t in (args[1] or []) if isinstance(t, torch.Tensor)}
                        plain = [t for t in plain if id(t) not in idx]
                    else:
                        self._fail(func, "cpu", "cuda:0")
                pointwise = torch.Tag.pointwise in func.tags or func.name().startswith("aten::_foreach_") \
                    or func in (aten.masked_fill_.Tensor, aten.masked_fill.Tensor, aten.index_put_.default,
                                aten.index_put.default, aten._index_put_impl_.default)
                for t in plain:
                    if t.dim() > 0 or not pointwise:
                        self._fail(func, "cuda:0", "cpu")
        def unwrap(t):
            return t.elem if isinstance(t, SimTensor) else t
        uargs, ukwargs = tree_map(unwrap, (args, kwargs))
        if func in (aten._to_copy.default,) and dev is not None and dev.type == "cpu":
            return func(*uargs, **ukwargs)
        out = func(*uargs, **ukwargs)
        schema = func._schema
        if len(schema.returns) == 1 and schema.returns[0].alias_info is not None \
                and schema.returns[0].alias_info.is_write:    # in-place / out=: return the very tensor written
            if "out" in kwargs:
                return kwargs["out"]
            if func.overloadpacket.__name__ in META_INPLACE and isinstance(args[0], SimTensor):
                with torch._C._DisableTorchDispatch():   # the wrapper's own sizes/strides: the meta kernel
                    func(*args, **kwargs)
            return args[0]
        if not out_sim:
            return out
        return tree_map(lambda t: SimTensor(t) if isinstance(t, torch.Tensor) and not isinstance(t, SimTensor)
                        else t, out)


def _basic_index(x, index):
    """PyTorch's applySlicing in Python: ints select, slices slice, None unsqueezes, tensors (and lists) are
    advanced indices kept per dimension. Returns (view, advanced list or None)."""
    if not isinstance(index, tuple):
        index = (index,)
    consumes = sum(0 if (i is None or i is Ellipsis or isinstance(i, bool)) else
                   (i.dim() if isinstance(i, torch.Tensor) and i.dtype == torch.bool else 1) for i in index)
    adv, d = [], 0
    for i in index:
        if i is None:
            x = aten.unsqueeze.default(x, d); adv.append(None); d += 1
        elif i is Ellipsis:
            n = x.dim() - d - consumes
            adv.extend([None] * n); d += n
        elif isinstance(i, bool):
            raise NotImplementedError("bool scalar index (sim_cuda)")
        elif isinstance(i, int) or (isinstance(i, torch.Tensor) and i.dim() == 0 and not i.is_floating_point()
                                     and i.dtype != torch.bool and not isinstance(i, SimTensor)):
            x = aten.select.int(x, d, int(i)); consumes -= 1
        elif isinstance(i, slice):
            x = aten.slice.Tensor(x, d, i.start, i.stop, 1 if i.step is None else i.step)
            adv.append(None); d += 1; consumes -= 1
        else:
            t = i if isinstance(i, torch.Tensor) else torch.tensor(i)
            k = t.dim() if t.dtype == torch.bool else 1
            adv.append(t); adv.extend([None] * (k - 1)); d += k; consumes -= k
    if not any(isinstance(a, torch.Tensor) for a in adv):
        return x, None
    while adv and adv[-1] is None:
        adv.pop()
    return x, adv


def _getitem(x, index):
    v, adv = _basic_index(x, index)
    if adv is None:
        return v if v is not x else aten.alias.default(x)
    return aten.index.Tensor(v, adv)


def _setitem(x, index, value):
    v, adv = _basic_index(x, index)
    if not isinstance(value, torch.Tensor):
        value = torch.tensor(value, dtype=x.dtype)
    if adv is None:
        aten.copy_.default(v, value.expand(v.shape) if value.dim() <= v.dim() else value)
    else:
        aten.index_put_.default(v, adv, value)


def _to(func, x, *args, **kwargs):
    """Tensor.to / .cuda / .cpu without the binding's CUDA device guard."""
    if func is torch.Tensor.cpu:
        dev, dtype = CPU, None
    elif func is torch.Tensor.cuda:
        dev, dtype = CUDA, None
    else:
        if args and isinstance(args[0], torch.Tensor):
            dev, dtype = args[0].device, args[0].dtype
        else:
            dev, dtype, _, _ = torch._C._nn._parse_to(*args, **{k: v for k, v in kwargs.items() if k != "copy"})
    dev = None if dev is None else torch.device(dev)
    same_dev = dev is None or (dev.type in SIM_TYPES) == isinstance(x, SimTensor)
    if same_dev and (dtype is None or dtype == x.dtype):
        return aten.clone.default(x) if kwargs.get("copy") else x
    return aten._to_copy.default(x, dtype=dtype if dtype is not None else x.dtype,
                                 device=dev if dev is not None else x.device)


class GeneratorCheckMode(TorchFunctionMode):
    """The generator check needs the Python generator object, which dispatch re-wraps: done at this level.
    Indexing a cuda tensor goes through a CUDA device guard in the Python binding: done here with aten ops."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        d = kwargs.get("device")
        if d is not None and not isinstance(d, int) and torch.device(d).type in SIM_TYPES:   # the binding would
            kwargs = {**kwargs, "device": CUDA}                                        # need a CUDA guard
            if func in (torch.tensor, torch.as_tensor, torch.asarray):   # these skip dispatch modes: build on
                return aten._to_copy.default(func(*args, **{**kwargs, "device": CPU}), device=CUDA)   # CPU, move
        if func is torch.nn.functional.one_hot and isinstance(args[0], SimTensor):   # at::one_hot has a meta path
            ids = args[0]
            n = args[1] if len(args) > 1 else kwargs.get("num_classes", -1)
            n = int(ids.max()) + 1 if n < 0 else n
            return torch.zeros(*ids.shape, n, dtype=torch.long, device=CUDA).scatter_(-1, ids.unsqueeze(-1), 1)
        if func is torch.Tensor.tolist and isinstance(args[0], SimTensor):
            return aten._to_copy.default(args[0], device=CPU).tolist()
        if func in (torch.Tensor.to, torch.Tensor.cuda, torch.Tensor.cpu):
            return _to(func, args[0], *args[1:], **kwargs)
        if func is torch.Tensor.__getitem__ and isinstance(args[0], SimTensor):
            return _getitem(args[0], args[1])
        if func is torch.Tensor.__setitem__ and isinstance(args[0], SimTensor):
            return _setitem(args[0], args[1], args[2])
        if func is torch.Tensor.__getitem__ and isinstance(args[1], SimTensor) or (
                func is torch.Tensor.__getitem__ and isinstance(args[1], tuple)
                and any(isinstance(i, SimTensor) for i in args[1])):
            raise DeviceMismatch("indices should be either on cpu or on the same device as the indexed tensor (cpu) "
                                 "(simulated CUDA)")
        leaves, _ = tree_flatten((args, kwargs))
        gens = [g for g in leaves if isinstance(g, _Generator)]
        if gens:
            dev = kwargs.get("device")
            cuda = any(isinstance(t, SimTensor) for t in leaves) or (dev is not None and torch.device(dev).type in SIM_TYPES)
            for g in gens:
                if cuda != _is_sim_gen(g):
                    want, got = ("cuda", "cpu") if cuda else ("cpu", "cuda")
                    raise DeviceMismatch(f"Expected a '{want}' device type for generator but found '{got}' "
                                         f"(simulated CUDA, in {getattr(func, '__name__', func)})")
        return func(*args, **kwargs)


class _NoGraph:
    def __init__(self, *a, **k):
        raise RuntimeError("CUDA graphs are not simulated (sim_cuda)")


@contextlib.contextmanager
def sim_cuda():
    """Inside: torch.cuda.is_available() is True and cuda tensors are simulated on the CPU (see module doc)."""
    mode = SimCudaMode()
    patches = [
        mock.patch("torch.cuda.is_available", lambda: True),
        mock.patch("torch.cuda.device_count", lambda: 1),
        mock.patch("torch.cuda._lazy_init", lambda: None),
        mock.patch("torch.cuda.set_device", lambda d: None),
        mock.patch("torch.cuda.current_device", lambda: 0),
        mock.patch("torch.cuda.synchronize", lambda *a, **k: None),
        mock.patch("torch.cuda.get_rng_state_all", lambda: []),
        mock.patch("torch.cuda.set_rng_state_all", lambda s: None),
        mock.patch("torch.cuda.manual_seed_all", lambda s: None),
        mock.patch("torch.cuda.manual_seed", lambda s: None),
        mock.patch("torch.cuda.get_device_name", lambda *a: "simulated CUDA"),
        mock.patch("torch.cuda.CUDAGraph", _NoGraph),
        mock.patch("torch.Generator", SimGenerator),
    ]
    apply = torch.nn.Module._apply

    def _apply(self, fn, recurse=True):
        """Module.to keeps each Parameter object (tied weights stay tied, as `param.data = ...` does on a
        GPU): swap the tensors in place (load_state_dict keeps its copy_)."""
        swap = torch.__future__.get_swap_module_params_on_conversion()
        torch.__future__.set_swap_module_params_on_conversion(True)
        try:
            return apply(self, fn, recurse)
        finally:
            torch.__future__.set_swap_module_params_on_conversion(swap)

    patches.append(mock.patch.object(torch.nn.Module, "_apply", _apply))
    with contextlib.ExitStack() as st:
        st.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter.*")
        for p in patches:
            st.enter_context(p)
        st.enter_context(mode)
        st.enter_context(GeneratorCheckMode())
        yield mode
