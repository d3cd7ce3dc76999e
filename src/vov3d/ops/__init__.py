"""vov3d's hand-written CPU kernels and their tensor-level Python wrappers.

* ``csrc/``: the C sources (``inference_kernels.c``, ``training_kernels.c``, ``vector.h``), shipped with the
  package and compiled into one library on first use;
* ``library``: building, caching and loading that library (``load_library``, ``has_bf16``,
  ``library_unavailable``, ``default_cache_dir``);
* ``inference_kernels``: the inference kernels (``gemm``, ``depthwise_st``, ``d2plus1d``, ``stem``, ``se_gate``,
  ``d2plus1d_layer``; ``pack_weight``, ``layer_weights``);
* ``training_kernels``: the training kernels as autograd functions of tensors.

Everything here takes and returns tensors, never modules: ``vov3d.accel`` applies these to models.
"""
