# syntax=docker/dockerfile:1
# The siamese-tfx image for Kubeflow Pipelines (see kubeflow/README.md). Every step of the
# compiled pipeline runs in it as
#   python -m pipeline.container_entrypoint ARGS
# (our wrapper of TFX's kubeflow_v2_run_executor for open-source KFP's driver; the spec sets the
# command and args), the Trainer on GPUs. The lock brings tensorflow-io and apache-beam[aws] for
# s3:// (MinIO); the endpoint and keys come from the pods' environment, never from the image.
# Build from the repository root:
#   docker build -t REGISTRY/siamese-tfx:TAG .
#
# Base image: nvidia/cuda 12.3 "base" on Ubuntu 22.04, for its python3.10. requirements.lock is
# resolved for CPython 3.10 (and crcmod and pyfarmhash are compiled for it), while
# tensorflow/tensorflow:2.16.2-gpu ships Python 3.11. TensorFlow 2.16 is built against CUDA 12.3
# and cuDNN 8.9, and the nvidia/cuda 12.3 cudnn tags carry cuDNN 9, so the CUDA libraries are the
# exact wheels that `tensorflow[and-cuda]==2.16.2` pins, installed in a layer of their own. The
# GPU driver itself comes from the node (NVIDIA container toolkit / GPU operator).
ARG BASE_IMAGE=nvidia/cuda:12.3.2-base-ubuntu22.04

# --- build: CUDA wheels and the locked virtual environment ------------------------------------
FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Ubuntu's security updates replace exact versions, so apt packages follow the 22.04 release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential ca-certificates python3.10 python3.10-dev python3.10-venv \
    && rm -rf /var/lib/apt/lists/*

# The uv version the Makefile uses.
ARG UV_VERSION=0.13.9
RUN python3.10 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_NO_CACHE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1

# CUDA 12.3 and cuDNN 8.9: the pins of tensorflow==2.16.2's [and-cuda] extra (dependencies
# among them included). Outside the venv, so that syncing the lock leaves them alone, and before
# the lock, so that a lock change does not download them again.
RUN /opt/uv/bin/uv pip install --python /usr/bin/python3.10 --target /opt/cuda --no-deps \
        nvidia-cublas-cu12==12.3.4.1 \
        nvidia-cuda-cupti-cu12==12.3.101 \
        nvidia-cuda-nvcc-cu12==12.3.107 \
        nvidia-cuda-nvrtc-cu12==12.3.107 \
        nvidia-cuda-runtime-cu12==12.3.101 \
        nvidia-cudnn-cu12==8.9.7.29 \
        nvidia-cufft-cu12==11.0.12.1 \
        nvidia-curand-cu12==10.3.4.107 \
        nvidia-cusolver-cu12==11.5.4.101 \
        nvidia-cusparse-cu12==12.2.0.103 \
        nvidia-nccl-cu12==2.19.3 \
        nvidia-nvjitlink-cu12==12.3.101

# Exactly the packages of a local run: the same lock, synced the same way.
COPY requirements.lock /tmp/requirements.lock
RUN /opt/uv/bin/uv venv --python /usr/bin/python3.10 /opt/venv \
    && /opt/uv/bin/uv pip sync --python /opt/venv/bin/python /tmp/requirements.lock

# --- runtime ----------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG DEBIAN_FRONTEND=noninteractive
# KFP's launcher downloads each step's input artifacts under /s3, /gcs or /minio before our
# command runs. KFP 2.3+ mounts writable emptyDirs there; on 2.0-2.2 the image's own folders
# are used, so they belong to the uid the steps run as.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates python3.10 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 --shell /bin/bash tfx \
    && install -d -o 1000 -g 1000 /s3 /gcs /minio

COPY --from=build /opt/uv/bin/uv /usr/local/bin/uv
COPY --from=build /opt/cuda /opt/cuda
COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:/opt/cuda/nvidia/cuda_nvcc/bin:${PATH} \
    LD_LIBRARY_PATH=/opt/cuda/nvidia/cublas/lib:/opt/cuda/nvidia/cuda_cupti/lib:/opt/cuda/nvidia/cuda_nvrtc/lib:/opt/cuda/nvidia/cuda_runtime/lib:/opt/cuda/nvidia/cudnn/lib:/opt/cuda/nvidia/cufft/lib:/opt/cuda/nvidia/curand/lib:/opt/cuda/nvidia/cusolver/lib:/opt/cuda/nvidia/cusparse/lib:/opt/cuda/nvidia/nccl/lib:/opt/cuda/nvidia/nvjitlink/lib:/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \
    XLA_FLAGS=--xla_gpu_cuda_data_dir=/opt/cuda/nvidia/cuda_nvcc \
    TF_USE_LEGACY_KERAS=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never

# Our code last: an edit rebuilds only this layer. Installed as a package (not editable, no
# dependencies: the lock has them), so the executors, run_fn and preprocessing_fn import by their
# dotted paths (components.trainer.run.run_fn, ...); setuptools comes from the lock.
COPY pyproject.toml /opt/siamese-tfx/
COPY pipeline /opt/siamese-tfx/pipeline
COPY components /opt/siamese-tfx/components
RUN uv pip install --python /opt/venv/bin/python --no-deps --no-build-isolation /opt/siamese-tfx \
    && rm -rf /opt/siamese-tfx/build /opt/siamese-tfx/*.egg-info

USER 1000
WORKDIR /home/tfx
# No entrypoint of ours (and none of the base's): KFP gives the command, and
# `docker run IMAGE python -c ...` works as it reads.
ENTRYPOINT []
CMD ["python"]
