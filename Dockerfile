# adamtune worker / dashboard image. CPU wheels of torch keep it small; for GPUs build with
#   docker build --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
# (docker-compose.gpu.yml does). The user's uid is fixed: deploy/kubernetes runs the pods as 1000.
FROM python:3.11-slim
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
WORKDIR /app
RUN pip install --no-cache-dir --index-url ${TORCH_INDEX} torch torchvision
COPY pyproject.toml README.md ./
COPY studies studies
COPY search_spaces search_spaces
COPY data data
COPY training training
COPY storage storage
COPY results results
COPY adamtune adamtune
RUN pip install --no-cache-dir . && useradd --create-home --uid 1000 adamtune && mkdir /artifacts && chown adamtune /artifacts
USER adamtune
CMD ["adamtune", "--help"]
