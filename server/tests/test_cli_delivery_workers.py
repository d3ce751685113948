"""`--delivery-workers` (ServerConfig.delivery_workers): bounded like every numeric option, passed to the
delivery worker, and its default is config.py's."""
from __future__ import annotations

from pathlib import Path

import pytest

from ductape_local import config
from ductape_local.cli import build_parser
from test_limits import BAD_VALUES

BAD_COUNTS = BAD_VALUES + ["2.5", "1025"]


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_bad_worker_count_is_refused_naming_option_and_value(value, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["serve", f"--delivery-workers={value}"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--delivery-workers" in err and repr(value) in err, err


def test_the_worker_count_is_taken_and_defaults_to_config_s():
    assert build_parser().parse_args(["serve"]).delivery_workers == config.DEFAULT_DELIVERY_WORKERS
    assert build_parser().parse_args(["serve", "--delivery-workers", "4"]).delivery_workers == 4
    with pytest.raises(ValueError, match="--delivery-workers"):
        config.ServerConfig(db_path=Path("x"), public_url="http://x", delivery_workers=0)


def test_the_worker_gets_the_count(tmp_path):
    from ductape_local.delivery import DeliveryWorker
    from ductape_local.events import EventStore

    settings = config.ServerConfig(db_path=tmp_path / "x.db", public_url="http://x", delivery_workers=3)
    worker = DeliveryWorker.for_config(EventStore(str(tmp_path / "x.db")), settings)
    assert worker._worker_count == 3  # pylint: disable=protected-access
