from setuptools import find_packages, setup

setup(
    name="deblurgan",
    version="0.1.0",
    description="DeblurGAN in Keras 3: blind motion deblurring with a conditional GAN",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["deblurgan", "deblurgan.*"]),
    install_requires=[
        "tensorflow>=2.16",  # default Keras backend; JAX or PyTorch can replace it (extras below)
        "keras>=3.3",
        "numpy>=1.26",
        "pillow>=10.0",
        "click>=8.0",
        "h5py>=3.10",  # the .h5 weight files (Sicara's format)
        "tqdm>=4.60",
        "tensorboard>=2.16",  # the training logs (TensorFlow 2.21 no longer installs it)
        "scipy>=1.11",  # FFT convolution for blur synthesis, Gaussian windows for SSIM
    ],
    extras_require={
        # scikit-image: reference metrics and sample photos; scikit-learn: two more sample photos;
        # tifffile: 16-bit TIFF fixtures; matplotlib: one more photo (scripts/fetch_photos.py)
        "test": [
            "pytest>=7",
            "pytest-xdist>=3",  # -n 2: the suite is half subprocesses, which leave a core idle
            "scikit-image>=0.22",
            "scikit-learn>=1.0",
            "matplotlib>=3.5",
            "tifffile",
            "ruff>=0.4",
        ],
        "jax": ["jax>=0.4.30"],
        # Newest release tested; a newer one may pull several GB of CUDA packages on Linux.
        "torch": ["torch>=2.2,<2.14"],
        # scripts/export.py and --engine: Keras exports ONNX through tf2onnx, OpenVINO IR through openvino.
        "export": ["tf2onnx>=1.16", "onnx>=1.15", "onnxruntime>=1.17", "openvino>=2024.0"],
        "video": ["imageio-ffmpeg>=0.5"],  # its wheel ships an ffmpeg binary
        "notebook": ["nbclient>=0.10", "nbformat>=5.9", "ipykernel>=6", "matplotlib>=3.7"],
    },
)
