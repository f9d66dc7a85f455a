"""The shared training machinery: configuration, checkpoints, optimiser/schedule, processes, the loop, logs.

Modules: ``config`` (options, YAML, save_config), ``checkpoint`` (atomic files, newest valid, keep N),
``optim`` (AdamW groups, warm-up + cosine), ``distributed`` (torchrun/DDP, sampler), ``rng`` (generator states),
``trainer`` (the loop), ``logs`` (log file, TensorBoard, throughput).
"""
