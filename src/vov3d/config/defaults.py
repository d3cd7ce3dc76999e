"""Config defaults: the original's keys (PySlowFast late 2020 + VoV3D's ``VOV3D`` node, spec §7.1) and ours.

``get_cfg()`` returns a fresh copy. Values are the original's defaults, so an original YAML file
resolves to the same values as in the original, except where the original default names
something vov3d cannot build (a SlowFast model, two input pathways, an unregistered T-OSA
function); there the default is VoV3D-M (Dec 2020), which builds. Keys marked "no effect" are
kept only so that the original files load; changing them to a value vov3d cannot honour is a
ConfigError (see ``validation.py``). Keys marked "ours" do not exist in the original.
``docs/configs.md`` lists all of this.

Sections of the original that belong to features vov3d does not have (AVA, DETECTION, DEMO,
MULTIGRID, SLOWFAST, TensorBoard visualisation) are not part of this tree: ``loading.py`` accepts
and ignores them (``IGNORED_ORIGINAL_SECTIONS``) as long as they do not switch the feature on.
"""

from __future__ import annotations

from yacs.config import CfgNode

_C = CfgNode()

# ---------------------------------------------------------------------------------------------- BN
_C.BN = CfgNode()
# Recompute BN running statistics on training batches before each checkpoint/eval (spec §9.3).
_C.BN.USE_PRECISE_STATS = False
# Batches used for precise BN.
_C.BN.NUM_BATCHES_PRECISE = 200
# Weight decay of every normalisation parameter (found by module type: fixes spec §9.1/§11.8).
_C.BN.WEIGHT_DECAY = 0.0
# batchnorm | sync_batchnorm (the original's sub_batchnorm is not supported).
_C.BN.NORM_TYPE = "batchnorm"
# No effect: sub_batchnorm's split count; must stay 1.
_C.BN.NUM_SPLITS = 1
# sync_batchnorm: processes whose batch statistics are averaged together (groups of consecutive
# local ranks); must divide the processes per machine (spec §11.15).
_C.BN.NUM_SYNC_DEVICES = 1
# Ours: sync_batchnorm over all processes of the job, ignoring NUM_SYNC_DEVICES.
_C.BN.GLOBAL_SYNC = False

# ------------------------------------------------------------------------------------------- TRAIN
_C.TRAIN = CfgNode()
_C.TRAIN.ENABLE = True
# kinetics | ssv1 | ssv2 (for the train and val splits).
_C.TRAIN.DATASET = "kinetics"
# Total clips per iteration over all processes of all machines (divided evenly between processes).
_C.TRAIN.BATCH_SIZE = 64
# Evaluate on the val split every EVAL_PERIOD epochs (and after the last).
_C.TRAIN.EVAL_PERIOD = 10
# Save a checkpoint every CHECKPOINT_PERIOD epochs (and after the last).
_C.TRAIN.CHECKPOINT_PERIOD = 10
# Continue from the newest valid checkpoint in OUTPUT_DIR/checkpoints.
_C.TRAIN.AUTO_RESUME = True
# Weights to start from (fine-tuning) when there is nothing to resume.
_C.TRAIN.CHECKPOINT_FILE_PATH = ""
# pytorch only (caffe2 checkpoints are not supported).
_C.TRAIN.CHECKPOINT_TYPE = "pytorch"
# No effect: 2D-to-3D inflation is not supported; must stay False.
_C.TRAIN.CHECKPOINT_INFLATE = False
# Kept for the original's command lines; vov3d never takes the epoch or the optimizer state from a
# fine-tuning checkpoint in any case (spec §9.4, §11.9).
_C.TRAIN.CHECKPOINT_EPOCH_RESET = False
# Name prefixes removed from the checkpoint's parameter names before loading (e.g. "module.").
_C.TRAIN.CHECKPOINT_CLEAR_NAME_PATTERN = ()
# Ours: also checkpoint every N iterations, recording the position in the epoch (0 = off).
_C.TRAIN.CHECKPOINT_ITER_PERIOD = 0
# Ours: fine-tuning loads the tensors whose names and shapes fit and leaves the rest fresh, as the
# original did silently; False = only a classifier of another size may differ.
_C.TRAIN.FINETUNE_LOAD_WHAT_FITS = False
# Ours: training step implementation on a CPU: auto | kernels | channels_last | compiled | eager (vov3d.accel).
_C.TRAIN.BACKEND = "auto"
# Ours: auto (bf16 where supported on a GPU, else fp16 with a scaler; off on a CPU) | off | bf16 | fp16.
_C.TRAIN.MIXED_PRECISION = "auto"
# Ours: channels_last_3d memory format on a GPU.
_C.TRAIN.CHANNELS_LAST = True
# Ours: torch.compile the training model.
_C.TRAIN.COMPILE = False

# -------------------------------------------------------------------------------------------- TEST
_C.TEST = CfgNode()
_C.TEST.ENABLE = True
# kinetics | ssv1 | ssv2 (for the test split).
_C.TEST.DATASET = "kinetics"
# Total clips per iteration over all processes.
_C.TEST.BATCH_SIZE = 8
# Weights to test; empty = the newest checkpoint in OUTPUT_DIR, else TRAIN.CHECKPOINT_FILE_PATH.
_C.TEST.CHECKPOINT_FILE_PATH = ""
# Temporal clips per video.
_C.TEST.NUM_ENSEMBLE_VIEWS = 10
# Spatial crops per clip: 1 or 3.
_C.TEST.NUM_SPATIAL_CROPS = 3
# pytorch only.
_C.TEST.CHECKPOINT_TYPE = "pytorch"
# Where to write the per-video predictions; empty = OUTPUT_DIR's default file.
_C.TEST.SAVE_RESULTS_PATH = ""

# ------------------------------------------------------------------------------------------ RESNET
# No effect except ZERO_INIT_FINAL_BN (spec §2.1, §3.1, §11.3): VoV3D ignores them all, X3D is fully
# described by the X3D node. TRANS_FUNC must be x3d_transform for X3D.
_C.RESNET = CfgNode()
_C.RESNET.TRANS_FUNC = "bottleneck_transform"
_C.RESNET.NUM_GROUPS = 1
_C.RESNET.WIDTH_PER_GROUP = 64
_C.RESNET.INPLACE_RELU = True
_C.RESNET.STRIDE_1X1 = False
# Zero-initialise the last BN of every residual branch (spec §5). Has effect.
_C.RESNET.ZERO_INIT_FINAL_BN = False
_C.RESNET.DEPTH = 50
_C.RESNET.NUM_BLOCK_TEMP_KERNEL = [[3], [4], [6], [3]]
_C.RESNET.SPATIAL_STRIDES = [[1], [2], [2], [2]]
_C.RESNET.SPATIAL_DILATIONS = [[1], [1], [1], [1]]

# --------------------------------------------------------------------------------------------- X3D
_C.X3D = CfgNode()
# WIDTH_FACTOR 2.0, BOTTLENECK_FACTOR 2.25, DIM_C1 12 with DEPTH_FACTOR 2.2 (X3D-M) or 5.0 (X3D-L)
# are the registered models. The original defaults were 1.0 (X3D-XS-like); these are X3D-M's.
_C.X3D.WIDTH_FACTOR = 2.0
_C.X3D.DEPTH_FACTOR = 2.2
_C.X3D.BOTTLENECK_FACTOR = 2.25
# Width of the head's lin_5, for VoV3D too (spec §4).
_C.X3D.DIM_C5 = 2048
_C.X3D.DIM_C1 = 12
# Must stay False / False / True (the only X3D variant the original configs build).
_C.X3D.SCALE_RES2 = False
_C.X3D.BN_LIN5 = False
_C.X3D.CHANNELWISE_3x3x3 = True

# ------------------------------------------------------------------------------------------- VOV3D
_C.VOV3D = CfgNode()
# (DEPTH, NUM_CONV, INNER_CH) selects the model: (31, 4, 48) VoV3D-M as in the paper (Dec 2020),
# (31, 5, 40) VoV3D-M v2 (April 2021), (70, 5, 48) VoV3D-L (spec §0). The original defaults
# (19, 5, 64, "OSA_transform") built nothing; these are VoV3D-M's.
_C.VOV3D.DEPTH = 31
_C.VOV3D.TRANS_FUNC = "t_osa_2plus1_transform"
_C.VOV3D.NUM_CONV = 4
_C.VOV3D.INNER_CH = 48
# No effect (spec §2.1): the head reads X3D.DIM_C5 and X3D.BN_LIN5.
_C.VOV3D.DIM_C5 = 2048
_C.VOV3D.BN_LIN5 = False
# No effect: read by the original, then ignored by T-OSA (spec §2.1, §11.3).
_C.VOV3D.TEMPORAL_DILATIONS = [[2], [2], [2], [2]]
# Fixed by the architecture: every stage starts with a stride-2 block (spec §2.1); must stay as is.
_C.VOV3D.SPATIAL_STRIDES = [[2], [2], [2], [2]]
_C.VOV3D.INNER_MULTIPLIER = [1, 2, 4, 8]
_C.VOV3D.OUT_MULTIPLIER = [0.5, 1.0, 2, 4]

# ---------------------------------------------------------------------------------------- NONLOCAL
# No effect: non-local blocks are not supported; LOCATION must stay empty.
_C.NONLOCAL = CfgNode()
_C.NONLOCAL.LOCATION = [[[]], [[]], [[]], [[]]]
_C.NONLOCAL.GROUP = [[1], [1], [1], [1]]
_C.NONLOCAL.INSTANTIATION = "dot_product"
_C.NONLOCAL.POOL = [[[1, 2, 2], [1, 2, 2]]] * 4

# ------------------------------------------------------------------------------------------- MODEL
_C.MODEL = CfgNode()
# vov3d | x3d; must agree with MODEL_NAME. (Original default: slowfast.)
_C.MODEL.ARCH = "vov3d"
# VoV3D | X3D. (Original default: SlowFast.)
_C.MODEL.MODEL_NAME = "VoV3D"
_C.MODEL.NUM_CLASSES = 400
# cross_entropy only.
_C.MODEL.LOSS_FUNC = "cross_entropy"
# No effect (the original's pathway bookkeeping).
_C.MODEL.SINGLE_PATHWAY_ARCH = ["c2d", "i3d", "slow", "x3d", "vov3d"]
_C.MODEL.MULTI_PATHWAY_ARCH = ["slowfast"]
# Dropout before the classifier.
_C.MODEL.DROPOUT_RATE = 0.5
# Must stay 0 (drop-connect is not supported; no VoV3D/X3D config uses it).
_C.MODEL.DROPCONNECT_RATE = 0.0
# Std of the classifier's initial weights (spec §5).
_C.MODEL.FC_INIT_STD = 0.01
# softmax only (applied by the tester to every view before the ensemble).
_C.MODEL.HEAD_ACT = "softmax"
# Ours: global (average pool over any T, H, W; logits in train and eval) | original (the
# original's fixed pool sized by NUM_FRAMES and TRAIN_CROP_SIZE: at a larger test crop it
# averages the softmax of several positions, spec §4, §11.5).
_C.MODEL.HEAD_POOL = "global"

# -------------------------------------------------------------------------------------------- DATA
_C.DATA = CfgNode()
# Folder of the annotation files (see docs/data.md).
_C.DATA.PATH_TO_DATA_DIR = ""
# Separator between path and label in Kinetics csv files.
_C.DATA.PATH_LABEL_SEPARATOR = " "
# Prefix joined to the paths in the annotation files ("" = relative to the annotation file's folder).
_C.DATA.PATH_PREFIX = ""
_C.DATA.NUM_FRAMES = 8
# Frame stride at TARGET_FPS (Kinetics only, spec §8.2).
_C.DATA.SAMPLING_RATE = 8
_C.DATA.MEAN = [0.45, 0.45, 0.45]
# Must be [3]: one RGB pathway. (Original default [3, 3], for SlowFast.)
_C.DATA.INPUT_CHANNEL_NUM = [3]
_C.DATA.STD = [0.225, 0.225, 0.225]
# Short side drawn from [min, max] before the training crop.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
_C.DATA.TRAIN_CROP_SIZE = 224
_C.DATA.TEST_CROP_SIZE = 256
# Frame rate the Kinetics sampler works at. (Original default the int 30.)
_C.DATA.TARGET_FPS = 30.0
# No effect: vov3d always decodes with PyAV.
_C.DATA.DECODING_BACKEND = "pyav"
# Draw the jitter scale as 1/uniform(1/max, 1/min) instead of uniform(min, max).
_C.DATA.INV_UNIFORM_SAMPLE = False
# Random horizontal flips in training.
_C.DATA.RANDOM_FLIP = True
# Must stay False (multi-label training is not supported).
_C.DATA.MULTI_LABEL = False
# How the test views of a video are combined: sum | max (of the softmax scores).
_C.DATA.ENSEMBLE_METHOD = "sum"
# Feed BGR instead of RGB.
_C.DATA.REVERSE_INPUT_CHANNEL = False
# Ours: ssv2 read from extracted frames (the original's way) or from the .webm videos.
_C.DATA.SSV2_SOURCE = "frames"
# Ours: a text file of class names, one a line, for predictions and plots ("" = the dataset's own).
_C.DATA.CLASS_NAMES = ""

# ------------------------------------------------------------------------------------------ SOLVER
_C.SOLVER = CfgNode()
_C.SOLVER.BASE_LR = 0.1
# cosine | steps_with_relative_lrs (spec §9.2).
_C.SOLVER.LR_POLICY = "cosine"
_C.SOLVER.COSINE_END_LR = 0.0
# No effect: only used by policies vov3d does not have (exp, steps_with_lrs).
_C.SOLVER.GAMMA = 0.1
_C.SOLVER.STEP_SIZE = 1
# steps_with_relative_lrs: epochs where the LR changes, starting with 0, and the LR of each
# interval relative to BASE_LR (entries of LRS beyond len(STEPS) are never used).
_C.SOLVER.STEPS = []
_C.SOLVER.LRS = []
_C.SOLVER.MAX_EPOCH = 300
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.DAMPENING = 0.0
_C.SOLVER.NESTEROV = True
# Weight decay of every parameter that is not a normalisation parameter.
_C.SOLVER.WEIGHT_DECAY = 1e-4
# No effect: unused by the original too (WARMUP_START_LR sets the warm-up start).
_C.SOLVER.WARMUP_FACTOR = 0.1
# Linear warm-up from WARMUP_START_LR to the policy's value at WARMUP_EPOCHS.
_C.SOLVER.WARMUP_EPOCHS = 0.0
_C.SOLVER.WARMUP_START_LR = 0.01
# sgd | adamw (adamw is ours).
_C.SOLVER.OPTIMIZING_METHOD = "sgd"
# No effect, as in the original (spec §9.2, §11.7): use LINEAR_SCALING_REFERENCE.
_C.SOLVER.BASE_LR_SCALE_NUM_SHARDS = False
# Ours: 0 = off; else BASE_LR is multiplied by (total batch size / LINEAR_SCALING_REFERENCE).
_C.SOLVER.LINEAR_SCALING_REFERENCE = 0
# Ours: label smoothing of the cross-entropy loss.
_C.SOLVER.LABEL_SMOOTHING = 0.0
# Ours: optimizer step every N iterations (gradients accumulated in between).
_C.SOLVER.GRAD_ACCUM_STEPS = 1

# ------------------------------------------------------------------------------------ MIXUP (ours)
_C.MIXUP = CfgNode()
_C.MIXUP.ENABLE = False
# Beta(ALPHA, ALPHA) mixing weight for mixup; 0 = no mixup.
_C.MIXUP.ALPHA = 0.8
# Beta(CUTMIX_ALPHA, CUTMIX_ALPHA) area for cutmix; 0 = no cutmix.
_C.MIXUP.CUTMIX_ALPHA = 1.0
# Probability that a batch is mixed at all.
_C.MIXUP.PROB = 1.0
# Probability of cutmix instead of mixup when both are on.
_C.MIXUP.SWITCH_PROB = 0.5

# -------------------------------------------------------------------------------------- EMA (ours)
_C.EMA = CfgNode()
# Keep an exponential moving average of the weights; it is evaluated, tested and saved with them.
_C.EMA.ENABLE = False
_C.EMA.DECAY = 0.9998

# ---------------------------------------------------------------------------------------- run-wide
# GPUs (processes) per machine; 0 = CPU.
_C.NUM_GPUS = 1
# Machines.
_C.NUM_SHARDS = 1
# This machine's index.
_C.SHARD_ID = 0
_C.OUTPUT_DIR = "./tmp"
_C.RNG_SEED = 1
# Log (and json_stats line) every LOG_PERIOD iterations.
_C.LOG_PERIOD = 10
_C.LOG_MODEL_INFO = True
# nccl | gloo (nccl needs GPUs).
_C.DIST_BACKEND = "nccl"
# Ours: seconds a process waits for the others before the job fails naming the lost rank.
_C.DIST_TIMEOUT = 1800

# --------------------------------------------------------------------------------------- BENCHMARK
_C.BENCHMARK = CfgNode()
_C.BENCHMARK.NUM_EPOCHS = 5
_C.BENCHMARK.LOG_PERIOD = 100
_C.BENCHMARK.SHUFFLE = True

# ------------------------------------------------------------------------------------- DATA_LOADER
_C.DATA_LOADER = CfgNode()
# Loader worker processes per training process.
_C.DATA_LOADER.NUM_WORKERS = 8
_C.DATA_LOADER.PIN_MEMORY = True
# No effect (PyAV decoding threads are set by vov3d.data).
_C.DATA_LOADER.ENABLE_MULTI_THREAD_DECODE = False

# ------------------------------------------------------------------------------------- TENSORBOARD
_C.TENSORBOARD = CfgNode()
_C.TENSORBOARD.ENABLE = False
# "" = OUTPUT_DIR/runs-{TRAIN.DATASET}.
_C.TENSORBOARD.LOG_DIR = ""


IGNORED_ORIGINAL_SECTIONS: dict[str, dict[str, object]] = {
    "AVA": {},
    "DETECTION": {"ENABLE": False},
    "DEMO": {"ENABLE": False},
    "MULTIGRID": {"SHORT_CYCLE": False, "LONG_CYCLE": False},
    "SLOWFAST": {},
    "TENSORBOARD.PREDICTIONS_PATH": {},
    "TENSORBOARD.CLASS_NAMES_PATH": {},
    "TENSORBOARD.CATEGORIES_PATH": {},
    "TENSORBOARD.CONFUSION_MATRIX": {},
    "TENSORBOARD.HISTOGRAM": {},
    "TENSORBOARD.MODEL_VIS": {"ENABLE": False},
    "TENSORBOARD.WRONG_PRED_VIS": {"ENABLE": False},
}
"""Original keys (or sections) of features vov3d does not have: accepted in a YAML file and ignored,
with the listed switches required to keep these values (the feature off)."""

NO_EFFECT_KEYS = (
    "BN.NUM_SPLITS",
    "TRAIN.CHECKPOINT_INFLATE",
    "RESNET.NUM_GROUPS",
    "RESNET.WIDTH_PER_GROUP",
    "RESNET.INPLACE_RELU",
    "RESNET.STRIDE_1X1",
    "RESNET.DEPTH",
    "RESNET.NUM_BLOCK_TEMP_KERNEL",
    "RESNET.SPATIAL_STRIDES",
    "RESNET.SPATIAL_DILATIONS",
    "VOV3D.DIM_C5",
    "VOV3D.BN_LIN5",
    "VOV3D.TEMPORAL_DILATIONS",
    "NONLOCAL.GROUP",
    "NONLOCAL.INSTANTIATION",
    "NONLOCAL.POOL",
    "MODEL.SINGLE_PATHWAY_ARCH",
    "MODEL.MULTI_PATHWAY_ARCH",
    "DATA.DECODING_BACKEND",
    "SOLVER.GAMMA",
    "SOLVER.STEP_SIZE",
    "SOLVER.WARMUP_FACTOR",
    "SOLVER.BASE_LR_SCALE_NUM_SHARDS",
    "DATA_LOADER.ENABLE_MULTI_THREAD_DECODE",
)
"""Keys kept so that the original files load, whose value changes nothing (docs/configs.md)."""


def get_cfg() -> CfgNode:
    """A fresh, mutable copy of the defaults."""
    return _C.clone()
