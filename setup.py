from setuptools import find_namespace_packages, setup

setup(
    name="solo_ossl",
    version="0.1.0",
    description="Online self-supervised learning (SLCLRS, replay memory, RALS) in the style of solo-learn",
    # Namespace packages too: the YAML folders (configs/..., presets) are data packages, declared so that setuptools
    # installs them without a warning per folder.
    packages=find_namespace_packages(include=["solo_ossl", "solo_ossl.*"], exclude=["*.__pycache__"]),
    package_data={"solo_ossl": ["configs/**/*.yaml", "presets/*.yaml", "data/embedded/*.npz", "data/embedded/*.md"]},
    license="MIT",
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",
        "torchvision>=0.19",
        "lightning>=2.4,<3",
        "torchmetrics>=1.4",
        "timm>=1.0",
        "omegaconf>=2.3",
        "pyyaml",
        "numpy",
        "pillow",
        "matplotlib",
        "scipy",  # Student-t intervals of paired differences (solo_ossl.compare)
        "tensorboard",  # ++logger=tensorboard
        "safetensors",  # exported backbones (python -m solo_ossl.export)
        "hydra-core>=1.3,<1.4",  # the entry points' command line (solo_ossl/args/cli.py), as solo-learn's
        "webdataset>=0.2.86",  # ++data.dataset=webdataset: tar shards streamed from disk, URLs or pipes
    ],
    # The base install runs the quick start and every entry point on CPU or GPU with the torch loader.
    extras_require={
        "umap": ["umap-learn>=0.5"],  # main_umap.py
        # DALI runs its CPU pipelines without a GPU too; wheels exist for Linux only.
        # Hydra sweeps as SLURM jobs (hydra/launcher=submitit_slurm) and the comparison runner's --launcher slurm.
        "cluster": ["hydra-submitit-launcher>=1.2"],
        "dali": ["nvidia-dali-cuda120>=1.30; platform_system == 'Linux'"],
        # The test needs: DALI's CPU pipelines and umap-learn are tested too.
        "dev": [
            "pytest>=7",
            "pytest-xdist>=3.5",  # the default suite runs on 2 workers (README's test command)
            "kornia>=0.7",  # the reference the augmentation's parity tests compare with (tests/augment_reference.py)
            "umap-learn>=0.5",
            "ruff>=0.6",
            "import-linter>=2.1",
            "hydra-submitit-launcher>=1.2",  # the launcher tests run submitit's local executor
            "nvidia-dali-cuda120>=1.30; platform_system == 'Linux'",
        ],
    },
)
