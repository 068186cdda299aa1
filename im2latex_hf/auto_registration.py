"""Registers the im2latex classes with transformers' Auto classes (runs once, on first import)."""

from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageTextToText, AutoProcessor

from .configuration_im2latex import Im2LatexConfig
from .image_processing_im2latex import Im2LatexImageProcessor
from .modeling_im2latex import Im2LatexForConditionalGeneration
from .processing_im2latex import Im2LatexProcessor

AutoConfig.register(Im2LatexConfig.model_type, Im2LatexConfig, exist_ok=True)
AutoModelForImageTextToText.register(Im2LatexConfig, Im2LatexForConditionalGeneration, exist_ok=True)
# One implementation (numpy + Pillow) serves whichever backend transformers asks for.
AutoImageProcessor.register(
    Im2LatexConfig,
    image_processor_classes={"torchvision": Im2LatexImageProcessor, "pil": Im2LatexImageProcessor},
    exist_ok=True,
)
AutoProcessor.register(Im2LatexConfig, Im2LatexProcessor, exist_ok=True)

# Saved configs carry `auto_map`, so Hub users without this package can load with trust_remote_code=True.
Im2LatexConfig.register_for_auto_class()
Im2LatexForConditionalGeneration.register_for_auto_class("AutoModelForImageTextToText")
Im2LatexImageProcessor.register_for_auto_class("AutoImageProcessor")
Im2LatexProcessor.register_for_auto_class("AutoProcessor")
