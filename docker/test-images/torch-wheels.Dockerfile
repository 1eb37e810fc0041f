# The torch wheels of this machine's disk, for the worker image's TORCH_WHEELS build argument
# (the build context is the wheel folder, e.g. /opt/wheels).
FROM scratch
COPY torch-*.whl /wheels/
