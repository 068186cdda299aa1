"""The model with real parts: TeX-rendered images, a tiny model trained until it reads them, real generate."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForImageTextToText, AutoProcessor

from im2latex_hf import Im2LatexForConditionalGeneration, Im2LatexProcessor
from im2latex_hf.rendering import render_formulas

from .conftest import REPO_ROOT, train_tiny_model
from .conftest import TINY_MODEL_FORMULAS as FORMULAS


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on six rendered formulas until it reproduces them (greedy)."""
    images = [result.image for result in render_formulas(FORMULAS, dpi=100)]
    assert all(image is not None for image in images)
    model, processor = train_tiny_model(FORMULAS, images)
    return model, processor, images


def read(model, processor, images, **generate_kwargs) -> list[str]:
    inputs = processor(images=images)
    return processor.batch_decode(model.generate(**inputs, max_new_tokens=30, **generate_kwargs))


def test_tiny_model_reproduces_its_training_formulas(trained):
    model, processor, images = trained
    assert read(model, processor, images) == FORMULAS


def test_beam_search_with_one_beam_equals_greedy_and_beams_read_too(trained):
    model, processor, images = trained
    greedy = model.generate(**processor(images=images), max_new_tokens=30)
    one_beam = model.generate(**processor(images=images), max_new_tokens=30, num_beams=1)
    assert torch.equal(greedy, one_beam)
    assert read(model, processor, images, num_beams=4) == FORMULAS


def test_cache_gives_the_same_tokens_as_recomputing(trained):
    """With the default dynamic cache, and with the static cache (all slots allocated, the unfilled ones masked)."""
    model, processor, images = trained
    for num_beams in (1, 3):
        uncached = model.generate(**processor(images=images), max_new_tokens=30, num_beams=num_beams, use_cache=False)
        for cache in ({}, {"cache_implementation": "static", "disable_compile": True}):
            cached = model.generate(**processor(images=images), max_new_tokens=30, num_beams=num_beams, **cache)
            assert torch.equal(cached, uncached), cache
    with pytest.raises(ValueError, match="max_position_embeddings"):  # 101 slots, for 64 positions
        model.generate(**processor(images=images), max_new_tokens=100, cache_implementation="static")


def test_prediction_does_not_depend_on_the_rest_of_the_batch(trained):
    model, processor, images = trained
    together = read(model, processor, images)
    alone = [read(model, processor, [image])[0] for image in images]
    assert together == alone
    # the narrowest image padded up to the widest one: same logits in its valid region
    inputs = processor(images=images)
    narrow = min(range(len(images)), key=lambda i: inputs["pixel_mask"][i].sum())
    single = processor(images=[images[narrow]])
    labels = processor(text=[FORMULAS[narrow]])["input_ids"]
    batched_logits = model(**inputs, decoder_input_ids=labels.expand(len(images), -1)).logits[narrow]
    single_logits = model(**single, decoder_input_ids=labels).logits[0]
    torch.testing.assert_close(batched_logits, single_logits, atol=1e-3, rtol=1e-3)  # unmasked padding: ~1


def test_bf16_autocast_on_cpu_reads_alike_and_attends_in_fp32(trained, monkeypatch):
    """Under CPU bf16 autocast (training on CPUs with native bf16) the model reads as in fp32, and attention runs
    in fp32: PyTorch's CPU attention kernel is several times slower in bf16."""
    model, processor, images = trained
    attention_dtypes = []
    attention = torch.nn.functional.scaled_dot_product_attention

    def spy(query, *args, **kwargs):
        attention_dtypes.append(query.dtype)
        return attention(query, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert read(model, processor, images) == FORMULAS
    assert attention_dtypes and set(attention_dtypes) == {torch.float32}


def test_loss_ignores_label_padding(trained):
    model, processor, images = trained
    batch = processor(images=images[:2], text=FORMULAS[:2])
    assert (batch["labels"] == -100).any()
    longer = torch.nn.functional.pad(batch["labels"], (0, 5), value=-100)
    torch.testing.assert_close(model(**batch).loss, model(**{**batch, "labels": longer}).loss)


def test_save_and_load_with_auto_classes(trained, tmp_path):
    model, processor, images = trained
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert not list(tmp_path.glob("*.bin"))
    loaded_model = AutoModelForImageTextToText.from_pretrained(tmp_path).eval()
    loaded_processor = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded_model, Im2LatexForConditionalGeneration)
    assert isinstance(loaded_processor, Im2LatexProcessor)
    inputs = processor(images=images, text=FORMULAS)
    torch.testing.assert_close(loaded_model(**inputs).logits, model(**inputs).logits)
    assert read(loaded_model, loaded_processor, images) == FORMULAS
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["auto_map"]["AutoModelForImageTextToText"] == "modeling_im2latex.Im2LatexForConditionalGeneration"


def test_remote_code_loads_without_the_package(trained, tmp_path):
    """A Hub user without im2latex_hf installed loads the saved folder with trust_remote_code=True."""
    model, processor, images = trained
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    images[0].save(tmp_path / "formula.png")
    script = f"""
import sys
sys.modules["im2latex_hf"] = None  # importing the package now fails: only the saved code may be used
from transformers import AutoModelForImageTextToText, AutoProcessor
path = {str(tmp_path / "model")!r}
model = AutoModelForImageTextToText.from_pretrained(path, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
inputs = processor(images=[{str(tmp_path / "formula.png")!r}])
print(processor.batch_decode(model.generate(**inputs, max_new_tokens=30))[0])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == FORMULAS[0]


def test_push_to_hub_uploads_a_loadable_repo(trained, tmp_path, monkeypatch):
    """push_to_hub's real code path up to the HTTP calls; the captured upload then loads as "user/repo"."""
    import huggingface_hub

    from im2latex_hf.hub import push_model

    model, processor, images = trained
    uploads: dict[str, bytes] = {}

    def create_commit(self, repo_id, operations, **kwargs):
        for operation in operations:
            content = operation.path_or_fileobj
            uploads[operation.path_in_repo] = content if isinstance(content, bytes) else open(content, "rb").read()
        return huggingface_hub.CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/0", commit_message="", commit_description="",
            oid="0" * 40,
        )  # fmt: skip

    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "create_repo",
        lambda self, repo_id, **kw: huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}"),
    )
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    monkeypatch.setattr(huggingface_hub.RepoCard, "validate", lambda self, repo_type=None: None)  # a Hub request
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    model.save_pretrained(tmp_path / "model")
    processor.save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "README.md").write_text("---\nlicense: mit\n---\n# tiny im2latex\n")
    push_model(tmp_path / "model", "user/im2latex-tiny")
    assert b"tiny im2latex" in uploads["README.md"]
    for name in ["config.json", "model.safetensors", "generation_config.json", "modeling_im2latex.py",
                 "configuration_im2latex.py", "tokenizer.json", "processor_config.json"]:  # fmt: skip
        assert name in uploads, f"{name} not uploaded: {sorted(uploads)}"

    # Lay the uploaded files out as the Hub cache would after a download, then load by repo id offline.
    snapshot = tmp_path / "hub" / "models--user--im2latex-tiny" / "snapshots" / ("1" * 40)
    snapshot.mkdir(parents=True)
    for name, content in uploads.items():
        (snapshot / name).write_bytes(content)
    (tmp_path / "hub" / "models--user--im2latex-tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--user--im2latex-tiny" / "refs" / "main").write_text("1" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    loaded = AutoModelForImageTextToText.from_pretrained("user/im2latex-tiny", cache_dir=tmp_path / "hub").eval()
    loaded_processor = AutoProcessor.from_pretrained("user/im2latex-tiny", cache_dir=tmp_path / "hub")
    assert read(loaded, loaded_processor, images) == FORMULAS


def test_release_stores_float16_weights_that_load_as_float32(trained, tmp_path):
    """scripts/release_model.py: half the bytes in git, the same readings after the upcast at load."""
    model, processor, images = trained
    model.save_pretrained(tmp_path / "checkpoint")
    processor.save_pretrained(tmp_path / "checkpoint")
    (tmp_path / "release").mkdir()
    (tmp_path / "release" / "README.md").write_text("# model card\n")
    (tmp_path / "release" / "stale.bin").write_text("from an older release")
    script = [
        sys.executable,
        "scripts/release_model.py",
        str(tmp_path / "checkpoint"),
        "--output",
        str(tmp_path / "release"),
    ]
    result = subprocess.run(script, capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loads as torch.float32" in result.stdout

    release = tmp_path / "release"
    assert (release / "README.md").read_text() == "# model card\n" and not (release / "stale.bin").exists()
    with safe_open(release / "model.safetensors", framework="pt") as weights:
        dtypes = {weights.get_tensor(name).dtype for name in weights.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes
    released = AutoModelForImageTextToText.from_pretrained(release).eval()
    assert next(released.parameters()).dtype == torch.float32
    assert read(released, AutoProcessor.from_pretrained(release), images) == FORMULAS


def test_release_of_several_checkpoints_is_their_average(trained, tmp_path):
    """scripts/release_model.py A B: every floating-point tensor is the mean of A's and B's (to float16 rounding),
    integer ones are A's; checkpoints of another architecture are refused."""
    model, processor, _ = trained
    other = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for tensor in other.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(0.01 * torch.randn(tensor.shape, generator=generator))
            else:
                tensor.fill_(999)
    for name, checkpoint in (("a", model), ("b", other)):
        checkpoint.save_pretrained(tmp_path / name)
        processor.save_pretrained(tmp_path / name)
    script = [sys.executable, "scripts/release_model.py", str(tmp_path / "a"), str(tmp_path / "b"),
              "--output", str(tmp_path / "release")]  # fmt: skip
    result = subprocess.run(script, capture_output=True, text=True, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    released = AutoModelForImageTextToText.from_pretrained(tmp_path / "release").state_dict()
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            mean = (tensor + other.state_dict()[name]) / 2
            assert torch.allclose(released[name], mean, rtol=1e-3, atol=1e-4), name
            assert not torch.equal(released[name], tensor.half().float()) or tensor.numel() == 0, name
        else:
            assert torch.equal(released[name], tensor), name

    deeper_config = copy.deepcopy(model.config)
    deeper_config.decoder_layers += 1
    Im2LatexForConditionalGeneration(deeper_config).save_pretrained(tmp_path / "deeper")
    processor.save_pretrained(tmp_path / "deeper")
    script[3] = str(tmp_path / "deeper")
    refused = subprocess.run(script, capture_output=True, text=True, cwd=REPO_ROOT)
    assert refused.returncode != 0 and "different weights" in refused.stderr
