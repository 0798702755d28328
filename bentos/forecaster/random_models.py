"""Build randomly initialised Chronos models and save them as local model directories.

No model hub is needed: the directories load through `BaseChronosPipeline.from_pretrained` exactly like
downloaded weights, so tests and benchmarks exercise the real loading and inference code. Their forecasts
are noise; only shapes, batching behaviour and speed are meaningful.

`CHRONOS_BOLT_SMALL` has the architecture of amazon/chronos-bolt-small (about 48 M parameters): T5 with
d_model 512, d_ff 2048, 6 encoder and 6 decoder layers, 8 heads of 64, patches of 16, context 2048,
64 steps and 9 quantiles.
"""

from pathlib import Path
from typing import Any

BOLT_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]

CHRONOS_BOLT_SMALL: dict[str, Any] = {
    "d_model": 512,
    "d_ff": 2048,
    "num_layers": 6,
    "num_decoder_layers": 6,
    "num_heads": 8,
    "d_kv": 64,
    "context_length": 2048,
}

TINY_BOLT: dict[str, Any] = {
    "d_model": 32,
    "d_ff": 64,
    "num_layers": 1,
    "num_decoder_layers": 1,
    "num_heads": 2,
    "d_kv": 16,
    "context_length": 512,
}


def save_random_bolt(directory: Path, *, seed: int = 0, **sizes: Any) -> Path:
    """Save a random Chronos-Bolt model (TINY_BOLT sizes unless given) into `directory` and return it."""
    import torch
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    options = {**TINY_BOLT, **sizes}
    context_length = options.pop("context_length")
    config = T5Config(
        **options,
        feed_forward_proj="relu",
        dropout_rate=0.1,
        vocab_size=2,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        chronos_pipeline_class="ChronosBoltPipeline",
        architectures=["ChronosBoltModelForForecasting"],
        chronos_config={
            "context_length": context_length,
            "prediction_length": 64,
            "input_patch_size": 16,
            "input_patch_stride": 16,
            "quantiles": BOLT_QUANTILES,
            "use_reg_token": True,
        },
    )
    torch.manual_seed(seed)
    model = ChronosBoltModelForForecasting(config).eval()
    model.save_pretrained(directory)
    return Path(directory)


def save_random_t5(directory: Path, *, seed: int = 0, n_tokens: int = 256) -> Path:
    """Save a tiny random Chronos-T5 model with `n_tokens` value bins into `directory` and return it."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        d_model=32,
        d_ff=64,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        d_kv=16,
        vocab_size=n_tokens,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
        chronos_config={
            "tokenizer_class": "MeanScaleUniformBins",
            "tokenizer_kwargs": {"low_limit": -15.0, "high_limit": 15.0},
            "context_length": 512,
            "prediction_length": 64,
            "n_tokens": n_tokens,
            "n_special_tokens": 2,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "use_eos_token": True,
            "model_type": "seq2seq",
            "num_samples": 20,
            "temperature": 1.0,
            "top_k": 50,
            "top_p": 1.0,
        },
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config).eval()
    model.save_pretrained(directory)
    return Path(directory)
