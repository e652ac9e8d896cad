"""Precision, quantisation and the memory check before loading."""

from __future__ import annotations

import warnings

import pytest
import torch

from engine.minigpt4 import loading
from engine.minigpt4.config import llama2_7b, vicuna0_7b, vicuna0_13b
from engine.minigpt4.generation import generate_reply
from engine.minigpt4.loading import ModelLoadError, load_model, recommend, required_bytes
from engine.protocol import ErrorKind, GenerationSettings, Quantization

GB = 1_000_000_000


def test_memory_estimates_match_the_published_figures():
    # docs/performance.md section 1: 7B fp16 "just over 16 GB" with the ViT; 4-bit 7B ~5 GB LLM; 13B fp16 does not fit 24 GB.
    assert 15 * GB < required_bytes(vicuna0_7b(), torch.float16, Quantization.NONE) < 20 * GB
    assert 4.5 * GB < required_bytes(vicuna0_7b(), torch.float16, Quantization.NF4) < 8.5 * GB  # full 2k context
    assert required_bytes(vicuna0_13b(), torch.float16, Quantization.NONE) > 24 * GB
    assert 5 * GB < required_bytes(llama2_7b(), torch.bfloat16, Quantization.NF4) < 8.5 * GB


def test_cpu_auto_dtype_is_float32_when_it_fits_else_bfloat16(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(loading, "available_bytes", lambda device: 24 * GB)
    assert loading.resolve_dtype("auto", cpu, vicuna0_7b()) == torch.bfloat16  # fp32 7B needs ~30 GB+
    monkeypatch.setattr(loading, "available_bytes", lambda device: 128 * GB)
    assert loading.resolve_dtype("auto", cpu, vicuna0_7b()) == torch.float32


def test_recommendation_picks_the_best_precision_that_fits():
    gpu = torch.device("cuda")
    assert recommend(vicuna0_7b(), torch.float16, 24 * GB, gpu) is Quantization.NONE
    assert recommend(vicuna0_7b(), torch.float16, 10 * GB, gpu) is Quantization.NF4
    assert recommend(vicuna0_13b(), torch.float16, 14 * GB, gpu) is Quantization.NF4
    assert recommend(vicuna0_13b(), torch.float16, 4 * GB, gpu) is None


@pytest.mark.parametrize("backend", ["cuda", "mps"])
@pytest.mark.parametrize("model_id", ["vicuna0-7b", "vicuna0-13b", "llama2-7b"])
@pytest.mark.parametrize("free_gb", [4, 6, 8, 10, 12, 16, 18, 19, 20, 24, 28, 32, 48])
def test_the_loader_advises_what_the_wizard_and_lumen_check_recommend(backend, model_id, free_gb):
    """One rule (engine.store.hardware): the setup wizard's and `lumen --check`'s recommendation for a
    GPU with this much free memory is the precision the loader names when a load does not fit."""
    from engine.store.catalogue import get_model
    from engine.store.hardware import Gpu, Hardware, recommend as wizard_recommend

    spec, free = get_model(model_id), free_gb * GB
    wizard = wizard_recommend(spec, Hardware((Gpu(0, "GPU", free, free, backend),), 64 * GB, "test"))
    on_gpu = wizard.precision if wizard.device == backend else None  # None: the wizard falls back to the CPU
    assert recommend(spec.config(), torch.float16, free, torch.device(backend)) is on_gpu


def test_not_enough_memory_fails_before_loading_with_advice(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(loading, "available_bytes", lambda device: 1000)  # also makes "auto" pick bfloat16 on the CPU
    with pytest.raises(ModelLoadError) as err:
        load_model(tiny_model_dir, device="cpu")
    assert err.value.kind is ErrorKind.OUT_OF_MEMORY
    assert "GB free" in str(err.value)


def test_cuda_requested_without_a_gpu_is_unsupported_hardware(tiny_model_dir):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelLoadError) as err:
        load_model(tiny_model_dir, device="cuda")
    assert err.value.kind is ErrorKind.UNSUPPORTED_HARDWARE


@pytest.mark.system
def test_four_bit_language_model_through_bitsandbytes(quantisable_model_dir):
    """bitsandbytes 4-bit runs on the CPU too (docs/environment.md section 2); only the LLM is quantised."""
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    loaded = load_model(quantisable_model_dir, device="cpu", quantization=Quantization.NF4)
    layer = loaded.model.language_model.model.layers[0]
    assert isinstance(layer.self_attn.q_proj, bnb.nn.Linear4bit)
    assert loaded.model.language_projection.weight.dtype == torch.float32
    assert not any(isinstance(m, bnb.nn.Linear4bit) for m in loaded.model.vision_model.modules())
    ids = loaded.tokenizer.encode("hello there", add_bos=True)
    reply = generate_reply(loaded.model, loaded.tokenizer, loaded.model.context_embeds([ids], []),
                           GenerationSettings.greedy(max_new_tokens=8, stop_on_template=False))
    assert len(reply.token_ids) == 8


@pytest.mark.system
def test_four_bit_layers_fit_the_avx512_bf16_repacking(quantisable_model_dir):
    """On CPUs with AVX512-BF16/AMX, bitsandbytes (>= 0.49) repacks each 4-bit weight at its first forward
    pass and needs its output width to be a multiple of 32. Run that repacking here on every quantised layer,
    so the test above cannot pass on this CPU and fail on another one."""
    pytest.importorskip("bitsandbytes")
    import copy

    import bitsandbytes as bnb
    import bitsandbytes.functional as F

    repack = getattr(F, "_convert_weight_packed_for_cpu", None)
    if repack is None:
        pytest.skip("this bitsandbytes has no CPU repacking")
    loaded = load_model(quantisable_model_dir, device="cpu", quantization=Quantization.NF4)
    layers = [m for m in loaded.model.language_model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert layers
    for layer in layers:
        assert layer.out_features % 32 == 0, layer
        repack(layer.weight.data.clone(), copy.deepcopy(layer.weight.quant_state))


@pytest.mark.gpu
@pytest.mark.parametrize("quantization", [Quantization.NONE, Quantization.NF4, Quantization.INT8])
def test_gpu_precisions_follow_the_official_rules(tiny_model_dir, quantization):
    loaded = load_model(tiny_model_dir, device="cuda", quantization=quantization)
    vit_linear = loaded.model.vision_model.encoder.layers[0].mlp.fc1
    assert vit_linear.weight.dtype == torch.float16  # ViT Linear/Conv in fp16
    assert loaded.model.vision_model.encoder.layers[0].layer_norm1.weight.dtype == torch.float32
    assert loaded.model.qformer.layernorm.weight.dtype == torch.float32
    pixels = torch.zeros(1, 3, 56, 56)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embeds = loaded.model.encode_image(pixels)
    assert embeds.dtype == loaded.model.embedding_dtype and torch.isfinite(embeds).all()


def test_free_memory_comes_from_psutil_and_unknown_memory_picks_the_safe_precision(monkeypatch):
    import psutil

    cpu = torch.device("cpu")
    assert loading.available_bytes(cpu) == pytest.approx(psutil.virtual_memory().available, rel=0.2)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: (_ for _ in ()).throw(OSError("refused")))
    assert loading.available_bytes(cpu) is None
    assert loading.resolve_dtype("auto", cpu, vicuna0_7b()) == torch.bfloat16  # fp32 was loaded unchecked


def test_unknown_memory_is_said_when_loading(tiny_model_dir, monkeypatch):
    monkeypatch.setattr(loading, "available_bytes", lambda device: None)
    loaded = load_model(tiny_model_dir, device="cpu")
    assert "memory_unknown" in loaded.warnings and loaded.dtype == torch.bfloat16


def test_mps_out_of_memory_is_out_of_memory_not_mismatched_files(tiny_model_dir, monkeypatch):
    from transformers import LlamaForCausalLM

    def out_of_memory(*args, **kwargs):  # noqa: ANN002, ANN003
        raise RuntimeError("MPS backend out of memory (MPS allocated: 17.2 GB, other allocations: 1.1 GB, "
                           "max allowed: 18.1 GB). Tried to allocate 250.0 MB on private pool.")

    monkeypatch.setattr(LlamaForCausalLM, "from_pretrained", out_of_memory)
    with pytest.raises(ModelLoadError) as err:
        load_model(tiny_model_dir, device="cpu")
    assert err.value.kind is ErrorKind.OUT_OF_SHARED_MEMORY


def test_the_loader_and_training_read_a_model_folder_alike(tiny_model_dir):
    """One reader of the folder format (engine.minigpt4.converter.read_model_config) for both."""
    from engine.minigpt4.converter import read_model_config
    from training.model import load_for_training, load_vision_side

    config = read_model_config(tiny_model_dir)
    assert load_model(tiny_model_dir, device="cpu", dtype="float32").config == config
    assert load_vision_side(tiny_model_dir).config == config and load_for_training(tiny_model_dir)[0].config == config
