"""MaskSpec: masked spectrogram prediction for self-supervised audio pre-training, as Kaldi/ESPnet-style recipes."""
from setuptools import find_packages, setup

setup(
    name="maskspec",
    version="0.1.0",
    description="Masked spectrogram prediction: self-supervised audio pre-training recipes",
    packages=find_packages(include=["maskspec", "maskspec.*"]),
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",
        "torchaudio>=2.4",
        "numpy",
        "kaldiio",
        "sentencepiece",
        "configargparse",
        "h5py",
        "soundfile",
        "PyYAML",
        "matplotlib",
        "tensorboard",
        "scikit-learn",
        "tqdm",
    ],
    extras_require={"test": ["pytest"], "hear": ["hearvalidator"]},
    entry_points={
        "console_scripts": [
            "maskspec-compute-fbank=maskspec.bin.compute_fbank:main",
            "maskspec-compute-stats=maskspec.bin.compute_stats:main",
            "maskspec-pretrain=maskspec.bin.pretrain:main",
            "maskspec-finetune=maskspec.bin.finetune:main",
            "maskspec-score=maskspec.bin.score:main",
            "maskspec-infer=maskspec.bin.infer:main",
            "maskspec-embed=maskspec.bin.embed:main",
            "maskspec-export=maskspec.bin.export:main",
            "maskspec-import=maskspec.bin.import_checkpoint:main",
        ]
    },
)
