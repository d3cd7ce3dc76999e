"""``vov3d bench``: inference latency and throughput, VoV3D and X3D side by side; or the data loader's speed (``vov3d.engine.bench.main``)."""

NAME = "bench"
HELP = "inference latency and throughput, VoV3D and X3D side by side; or the data loader's speed"
ENTRY = "vov3d.engine.bench:main"
