"""serving.vllm_plugin: vLLM's CPU LoRA wrapper with it, against a per-token reference."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest
import torch
from vllm.lora.layers.utils import LoRAMapping
from vllm.lora.ops.torch_ops import lora_ops
from vllm.lora.punica_wrapper.punica_cpu import PunicaWrapperCPU

from serving import vllm_plugin

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="the plugin changes CPU engines only")
Weights = tuple[torch.Tensor, ...]
Tokens = tuple[int, ...]
SLOTS, RANK, WIDTH = 4, 8, 32
LORA_IDS: list[int | None] = [11, 12, 13, 14]  # the adapter in each slot
# the LoRA id of each token of a batch: 0 is a token of a base-model request
TOKENS = (11, 0, 14, 14, 12, 0, 13, 11, 0, 14)


@pytest.fixture(scope="module", autouse=True)
def plugin() -> None:
    vllm_plugin.register()  # what vLLM does in each of its processes on CPU; idempotent


def batch(outs: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    a = tuple(torch.randn(SLOTS, 1, RANK, WIDTH, generator=generator) for _ in outs)
    b = tuple(torch.randn(SLOTS, 1, out, RANK, generator=generator) for out in outs)
    x = torch.randn(len(TOKENS), WIDTH, generator=generator)
    y = torch.randn(len(TOKENS), sum(outs), generator=generator)
    return (x, y, *a, *b)


def wrapper(tokens: Tokens) -> PunicaWrapperCPU:
    punica = PunicaWrapperCPU(64, 16, "cpu")  # tokens, segments
    punica.update_metadata(LoRAMapping(tokens, tokens, is_prefill=True), LORA_IDS, SLOTS, 1000)
    return punica


def reference(y: torch.Tensor, x: torch.Tensor, a: Weights, b: Weights, tokens: Tokens) -> torch.Tensor:
    """y plus, for each token with an adapter, scale * B[slot] A[slot] x, slice by slice."""
    out = y.clone()
    for t, lora_id in enumerate(tokens):
        if lora_id == 0:
            continue
        slot, offset = LORA_IDS.index(lora_id), 0
        for a_s, b_s in zip(a, b, strict=True):
            width = b_s.shape[2]
            out[t, offset : offset + width] += 0.5 * (b_s[slot, 0] @ (a_s[slot, 0] @ x[t]))
            offset += width
    return out


def test_vllm_loads_the_plugin_in_its_processes() -> None:
    names = {entry.value for entry in entry_points(group="vllm.general_plugins")}
    assert "serving.vllm_plugin:register" in names
    assert PunicaWrapperCPU.add_lora_linear is vllm_plugin.add_lora_linear


@pytest.mark.parametrize("outs", [(48, 16, 16), (24,)])
def test_linear_lora_applies_each_tokens_adapter_and_none_to_base_tokens(outs: tuple[int, ...]) -> None:
    x, y, *weights = batch(outs)
    a, b = tuple(weights[: len(outs)]), tuple(weights[len(outs) :])
    expected = reference(y, x, a, b, TOKENS)
    wrapper(TOKENS).add_lora_linear(y, x, a, b, 0.5, outs)
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)


def test_a_new_batch_layout_and_new_weights_are_used() -> None:
    outs = (16,)
    x, y, a0, b0 = batch(outs)
    punica = wrapper(TOKENS)
    punica.add_lora_linear(y.clone(), x, (a0,), (b0,), 0.5, outs)  # masks and weights cached
    b0.mul_(3)  # an adapter loaded into the slots, in place
    shuffled = TOKENS[::-1]
    punica.update_metadata(LoRAMapping(shuffled, shuffled, is_prefill=True), LORA_IDS, SLOTS, 1000)
    expected = reference(y, x, (a0,), (b0,), shuffled)
    punica.add_lora_linear(y, x, (a0,), (b0,), 0.5, outs)
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)


def test_the_stock_ops_give_base_tokens_no_delta() -> None:
    """The ops the other CPU LoRA paths use (embeddings, logits): -1 rows get zero."""
    generator = torch.Generator().manual_seed(1)
    weights = torch.randn(SLOTS, 1, RANK, WIDTH, generator=generator)
    x = torch.randn(3, WIDTH, generator=generator)
    out = torch.full((3, RANK), 7.0)
    lora_ops.bgmv_shrink(x, weights, out, torch.tensor([2, -1, 3]), 1.0)
    torch.testing.assert_close(out[0], weights[2, 0] @ x[0])
    torch.testing.assert_close(out[1], torch.zeros(RANK))
    expanded = torch.zeros(3, WIDTH)
    lora_ops.bgmv_expand(out, weights.transpose(2, 3), expanded, torch.tensor([2, -1, 3]), add_inputs=True)
    torch.testing.assert_close(expanded[1], torch.zeros(WIDTH))


def test_a_batch_of_base_model_tokens_only_is_left_alone() -> None:
    outs = (16,)
    x, y, a, b = batch(outs)
    before = y.clone()
    wrapper((0,) * len(TOKENS)).add_lora_linear(y, x, (a,), (b,), 0.5, outs)
    torch.testing.assert_close(y, before)


def test_the_plugin_refuses_a_vllm_it_was_not_written_for() -> None:
    import vllm

    vllm_plugin.check_version(vllm.__version__)  # the installed one: the pin and the plugin agree
    vllm_plugin.check_version(vllm_plugin.PATCHED_VLLM + ".7")
    with pytest.raises(RuntimeError, match=r"patches vLLM 0\.32\.x's CPU LoRA ops, not vLLM 0\.33\.0"):
        vllm_plugin.check_version("0.33.0")
