from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="im2latex_hf",
    version="0.1.0",
    description="Printed math formula images to LaTeX: a Hugging Face transformers model, tokenizer and processor.",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["im2latex_hf", "im2latex_hf.*"]),
    include_package_data=True,
    package_data={"im2latex_hf": ["default_model/*", "metrics/*/*.py"]},
    install_requires=[
        "torch>=2.4",
        "transformers>=5.0,<6",
        "timm>=1.0",
        "tokenizers>=0.21",
        "datasets>=5.0",
        "accelerate>=1.0",
        "evaluate>=0.4",
        "huggingface_hub>=1.0",
        "pillow>=10",
        "numpy",
        "pyyaml",
        "tqdm",
        "sacrebleu>=2.4",
        "rapidfuzz>=3",
        "onnxruntime>=1.20",  # the onnx backend; onnx and onnxscript: torch.onnx's exporter
        "onnx>=1.17",
        "onnxscript>=0.5",
    ],
    extras_require={
        "app": ["gradio>=6,<7"],
        "train": ["tensorboard", "matplotlib"],
        "dev": [
            "pytest",
            "pytest-timeout",
            "ruff",
            "gradio_client>=2",
            "gradio>=6,<7",
            "tensorboard",
            "matplotlib",
            "selenium>=4.20",
        ],
    },
    entry_points={"console_scripts": ["im2latex=im2latex_hf.cli:main"]},
)
