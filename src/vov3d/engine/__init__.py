"""The training and testing engine (spec §9): optimiser, LR schedule, precise BN, metrics, the
multi-view ensemble, logged stats, predictions, plots, losses, mixup, EMA, and the train/test loop.

Import the modules directly (``from vov3d.engine.lr_schedule import LRSchedule``); this package
imports nothing, so that its pieces stay independent.
"""
