"""How compiled models run beyond the generated loop: devices, CUDA-graph replay of the steady
step, torch.compile of the step functions, and bf16 autocast with fp32 states."""

PRECISIONS = ("32", "bf16")  # the one table of --precision / precision= (torch-free, for the CLI and options)
