"""`make demo`: simulate a small estate, serve its body-camera API on loopback, load it.

Everything lands under var/demo/ in the repository; run it again to start afresh.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from vigie import pipeline
from vigie.config import load_settings
from vigie.contracts import data_docs_index
from vigie.report import console as make_console, print_run
from vigie.simulate.bodycam_server import BodycamServer
from vigie.simulate.estate import generate

TOKEN = "demo-token"


def main(root: Path = Path("var/demo"), n_events: int = 5000) -> int:
    console = make_console()
    shutil.rmtree(root, ignore_errors=True)
    info = generate(root, n_events=n_events, seed=7)
    console.print(f"simulated estate: {info.out_dir} ({n_events} rows across four sources)")
    os.environ["BODYCAM_TOKEN"] = TOKEN
    with BodycamServer(info.events_path, token=TOKEN) as server:
        config = info.config_path
        config.write_text(config.read_text().replace("http://127.0.0.1:PORT", server.url))
        settings = load_settings(config)
        with console.status("loading"):
            report = pipeline.run(settings)
    print_run(report, console)
    quarantined = sum(s.counts.quarantined for s in report.sources)
    console.print(f"quarantined rows: {quarantined}  (vigie quarantine --config {config})")
    console.print(f"warehouse: {settings.warehouse}  (views in schema `oversight`)")
    console.print(f"data docs: {data_docs_index(pipeline.gx_root(settings))}")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
