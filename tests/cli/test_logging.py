"""setup_logging (vov3d/utils/logging.py), which `vov3d` and the engine call once per process."""

from __future__ import annotations

import logging

import pytest

from vov3d.utils.logging import setup_logging


@pytest.fixture(autouse=True)
def restore_vov3d_logger():
    logger = logging.getLogger("vov3d")
    handlers, level = list(logger.handlers), logger.level
    yield
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:], logger.level = handlers, level


def test_rank_0_writes_stderr_and_log_txt(tmp_path, capsys):
    logger = setup_logging(tmp_path / "run", rank=0)
    assert logger.name == "vov3d"
    logging.getLogger("vov3d.engine.trainer").info("epoch 1/3 done")
    logging.getLogger("vov3d.data").debug("not shown at INFO")
    logging.getLogger("elsewhere").warning("not ours")
    err = capsys.readouterr().err
    assert err.count("epoch 1/3 done") == 1 and "INFO vov3d.engine.trainer] epoch 1/3 done" in err
    assert "not shown" not in err and "not ours" not in err
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.splitlines()[-1].endswith("INFO vov3d.engine.trainer] epoch 1/3 done")


def test_other_ranks_log_to_stderr_only_with_their_rank(tmp_path, capsys):
    setup_logging(tmp_path, rank=3)
    logging.getLogger("vov3d.engine").warning("slow batch")
    assert capsys.readouterr().err.startswith("[rank 3] [")
    assert not (tmp_path / "log.txt").exists()


def test_calling_it_again_does_not_duplicate_lines(tmp_path, capsys):
    setup_logging(tmp_path / "a")
    setup_logging(tmp_path / "b")
    logging.getLogger("vov3d").info("once")
    assert capsys.readouterr().err.count("once") == 1
    assert "once" in (tmp_path / "b" / "log.txt").read_text()
    assert "once" not in (tmp_path / "a" / "log.txt").read_text()


def test_bad_rank_is_refused():
    with pytest.raises(ValueError, match="rank must be a non-negative int, got -1"):
        setup_logging(rank=-1)
