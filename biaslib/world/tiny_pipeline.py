"""A real, tiny diffusers text-to-image pipeline for the synthetic world, trained on a CPU in minutes.

:class:`WorldDiffusionPipeline` is a pixel-space diffusion pipeline: a 1.7 M-parameter
``UNet2DConditionModel`` on 32×32 RGB images conditioned on a 3.2 M-parameter ``CLIPTextModel``
(hidden 64, 2 layers) with the CLIP BPE tokenizer, sampled with ``DPMSolverMultistepScheduler``
(dynamic thresholding on, otherwise pixel-space DPMSolver saturates). It is a standard
``DiffusionPipeline``: ``save_pretrained`` writes ``model_index.json`` + one folder per component and
``WorldDiffusionPipeline.from_pretrained`` reads it back offline. ``DiffusionPipeline.from_pretrained``
cannot resolve the class name (diffusers looks ``_class_name`` up in its own namespace and would only
import it as remote code), so loaders dispatch on ``_class_name == "WorldDiffusionPipeline"`` the way
:func:`biaslib.generate.load_pipeline` does.

:func:`write_world_imagefolder` writes world people with their CC3M-like captions as an HF imagefolder; the
pipeline's training is a step (:mod:`biaslib.world_models.tiny_pipeline_training`): the world is data and a
simulator and trains nothing.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline, DPMSolverMultistepScheduler, UNet2DConditionModel
from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from biaslib.io import write_text

#: Context length of the text encoder and tokenizer (as in Stable Diffusion).
MAX_TOKENS = 77
#: Training noise schedule (DDPM cosine); sampling uses the same betas with DPMSolver. The UNet predicts
#: v (Salimans & Ho 2022): with epsilon prediction the loss at high noise says almost nothing about the
#: image, and in a 12-minute run the text conditioning never formed (chance-level occupations); v also
#: avoids dividing by sqrt(alpha_bar) ≈ 0 near t = T, which saturated DPMSolver's first steps.
SCHEDULE = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}


class WorldDiffusionPipeline(DiffusionPipeline):
    """Pixel-space text-to-image pipeline: text encoder → cross-attention UNet → DPMSolver sampler.

    Components: ``unet`` (:class:`~diffusers.UNet2DConditionModel`, 3 input/output channels, images in
    [-1, 1]), ``text_encoder`` (:class:`~transformers.CLIPTextModel`), ``tokenizer``
    (:class:`~transformers.CLIPTokenizer`) and ``scheduler`` (any diffusers scheduler; built with
    :class:`~diffusers.DPMSolverMultistepScheduler` and dynamic thresholding).
    """

    model_cpu_offload_seq = "text_encoder->unet"

    def __init__(self, unet: UNet2DConditionModel, text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer,
                 scheduler: Any):
        super().__init__()
        self.register_modules(unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this (2 ** number of UNet downsamplings)."""
        return 2 ** (len(self.unet.config.block_out_channels) - 1)

    def check_inputs(self, prompts: list[str], negative_prompts: list[str], height: int, width: int,
                     generator: torch.Generator | list[torch.Generator] | None, num_inference_steps: int,
                     num_images_per_prompt: int, output_type: str) -> None:
        """Raise ``ValueError`` naming the offending argument before any model work."""
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"prompt must be a string or a non-empty list of strings, got {prompts!r}")
        if len(negative_prompts) != len(prompts):
            raise ValueError(f"negative_prompt has {len(negative_prompts)} entries but prompt has {len(prompts)}")
        m = self.size_multiple
        if height < m or width < m or height % m or width % m:
            raise ValueError(f"height and width must be positive multiples of {m}, got height={height} width={width}")
        if num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be ≥ 1, got {num_inference_steps}")
        if num_images_per_prompt < 1:
            raise ValueError(f"num_images_per_prompt must be ≥ 1, got {num_images_per_prompt}")
        n = len(prompts) * num_images_per_prompt
        if isinstance(generator, list) and len(generator) != n:
            raise ValueError(f"generator is a list of {len(generator)} generators but prompt asks for {n} images "
                             f"({len(prompts)} prompts × num_images_per_prompt={num_images_per_prompt}); "
                             "pass one generator per image")
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"output_type must be 'pil', 'np' or 'pt', got {output_type!r}")

    def encode_prompt(self, prompts: list[str], device: torch.device) -> torch.Tensor:
        """Text embeddings ``(len(prompts), MAX_TOKENS, hidden)`` (last hidden state of the encoder)."""
        ids = self.tokenizer(prompts, max_length=self.tokenizer.model_max_length, padding="max_length",
                             truncation=True, return_tensors="pt").input_ids
        return self.text_encoder(ids.to(device), return_dict=False)[0]

    @torch.inference_mode()
    def __call__(
        self,
        prompt: str | list[str],
        negative_prompt: str | list[str] | None = None,
        num_inference_steps: int = 20,
        guidance_scale: float = 3.0,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        output_type: str = "pil",
        num_images_per_prompt: int = 1,
    ) -> ImagePipelineOutput:
        """Generate ``len(prompt) × num_images_per_prompt`` images.

        Images come out in prompt order (each prompt's copies together). ``generator``: one
        generator for the whole batch, or a list with one per image — then image i's initial noise
        ``(1, 3, H, W)`` is drawn from generator i alone, so an image does not depend on its batch.
        Classifier-free guidance (``guidance_scale > 1``) runs the unconditional (``negative_prompt``,
        default ``""``) and conditional branches in one UNet forward. ``height``/``width`` default to
        the UNet's ``sample_size``. Output: PIL images, a float array ``(B, H, W, 3)`` in [0, 1]
        (``"np"``) or a tensor ``(B, 3, H, W)`` in [0, 1] (``"pt"``).
        """
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        if negative_prompt is None:
            negatives = [""] * len(prompts)
        elif isinstance(negative_prompt, str):
            negatives = [negative_prompt] * len(prompts)
        else:
            negatives = list(negative_prompt)
        height = height or self.unet.config.sample_size
        width = width or self.unet.config.sample_size
        self.check_inputs(prompts, negatives, height, width, generator, num_inference_steps, num_images_per_prompt,
                          output_type)
        device = self._execution_device
        prompts = [p for p in prompts for _ in range(num_images_per_prompt)]
        negatives = [p for p in negatives for _ in range(num_images_per_prompt)]
        n = len(prompts)
        guided = guidance_scale > 1.0
        embeddings = self.encode_prompt(negatives + prompts if guided else prompts, device)

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        shape = (n, self.unet.config.in_channels, height, width)
        sample = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        sample = sample * self.scheduler.init_noise_sigma
        for t in self.progress_bar(self.scheduler.timesteps):
            model_input = torch.cat([sample, sample]) if guided else sample
            model_input = self.scheduler.scale_model_input(model_input, t)
            noise = self.unet(model_input.to(self.unet.dtype), t, embeddings, return_dict=False)[0].float()
            if guided:
                uncond, cond = noise.chunk(2)
                noise = uncond + guidance_scale * (cond - uncond)
            sample = self.scheduler.step(noise, t, sample, return_dict=False)[0]

        images = (sample / 2 + 0.5).clamp(0, 1)
        self.maybe_free_model_hooks()
        if output_type == "pt":
            return ImagePipelineOutput(images=images.cpu())
        array = images.cpu().permute(0, 2, 3, 1).numpy()
        if output_type == "np":
            return ImagePipelineOutput(images=array)
        return ImagePipelineOutput(images=self.numpy_to_pil(array))


def build_tokenizer(max_length: int = MAX_TOKENS) -> CLIPTokenizer:
    """The CLIP BPE tokenizer (49,408 tokens, context ``max_length``) built offline from open_clip's bundled
    vocabulary.

    Token ids equal open_clip's and OpenAI CLIP's (``<|startoftext|>`` = 49406, ``<|endoftext|>`` =
    49407, which also pads).
    """
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe()) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]
    byte_tokens = list(bytes_to_unicode().values())
    vocab = byte_tokens + [t + "</w>" for t in byte_tokens] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file, merges_file = Path(tmp) / "vocab.json", Path(tmp) / "merges.txt"
        vocab_file.write_text(json.dumps({token: i for i, token in enumerate(vocab)}), encoding="utf-8")
        merges_file.write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n", encoding="utf-8")
        return CLIPTokenizer(str(vocab_file), str(merges_file), model_max_length=max_length)


def build_tiny_pipeline(seed: int = 0, sample_size: int = 32,
                        text_encoder: CLIPTextModel | None = None) -> WorldDiffusionPipeline:
    """A randomly initialised :class:`WorldDiffusionPipeline`; the weights are a pure function of ``seed``
    (and of ``text_encoder`` when one is given).

    UNet: ``sample_size``² RGB, block channels (32, 64, 64), one layer per block, cross-attention
    dim 64, plus the attention-pooled text embedding added to the time embedding
    (``addition_embed_type="text"``, as DeepFloyd IF: a global conditioning path into every ResNet block
    besides cross-attention at 16² and 8²), 1.7 M parameters. Text encoder: CLIP, hidden 64, 2 layers,
    4 heads, 77 positions (3.2 M parameters, 3.16 M of them the token embedding).
    ``text_encoder``: use this (pretrained) encoder instead; the UNet's cross-attention dimension and the
    tokenizer's context length follow its hidden size and positions.
    The global torch RNG is left untouched.
    """
    context = text_encoder.config.max_position_embeddings if text_encoder is not None else MAX_TOKENS
    width = text_encoder.config.hidden_size if text_encoder is not None else 64
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=sample_size, in_channels=3, out_channels=3, layers_per_block=1,
            block_out_channels=(32, 64, 64), norm_num_groups=8, cross_attention_dim=width, attention_head_dim=8,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            addition_embed_type="text", addition_embed_type_num_heads=4,
        )
        if text_encoder is None:
            text_encoder = CLIPTextModel(CLIPTextConfig(
                vocab_size=49408, hidden_size=width, intermediate_size=256, num_hidden_layers=2,
                num_attention_heads=4, max_position_embeddings=context, bos_token_id=49406, eos_token_id=49407,
                pad_token_id=49407,
            ))
    scheduler = DPMSolverMultistepScheduler(**SCHEDULE, thresholding=True, sample_max_value=1.0)
    pipe = WorldDiffusionPipeline(unet=unet.eval(), text_encoder=text_encoder.eval(),
                                  tokenizer=build_tokenizer(context), scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---- training on the world ----------------------------------------------------------------------------

def write_world_imagefolder(world: Any, folder: Path, n_images: int, sample_size: int = 32,
                            stream: str = "tiny_pipeline/train") -> Path:
    """Render ``n_images`` world people, box-downsample 64→``sample_size`` and write an HF imagefolder.

    Layout: ``folder/train/{i:06d}.png`` + ``folder/train/metadata.jsonl`` (``file_name``, ``text`` =
    the CC3M-like caption), the metadata written last and atomically. Returns the ``train`` folder.
    """
    train = folder / "train"
    train.mkdir(parents=True, exist_ok=True)
    people = world.people(n_images, stream=stream)
    lines = []
    for i, row in enumerate(people.to_dict("records")):
        name = f"{i:06d}.png"
        image = world.render(row)
        if image.size != (sample_size, sample_size):
            image = image.resize((sample_size, sample_size), Image.Resampling.BOX)
        image.save(train / name, format="PNG")
        lines.append(json.dumps({"file_name": name, "text": row["caption"]}, ensure_ascii=False))
    write_text(train / "metadata.jsonl", "\n".join(lines) + "\n")
    return train


__all__ = [
    "MAX_TOKENS",
    "SCHEDULE",
    "WorldDiffusionPipeline",
    "build_tiny_pipeline",
    "build_tokenizer",
    "write_world_imagefolder",
]
