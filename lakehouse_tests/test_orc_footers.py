"""ORC footers: bounded in capped child processes, then checked in the run, whole or as a tail.

Hostile files here are real ORC files, written by pyarrow or pyorc and, where a writer cannot
produce the fault, edited byte by byte; the child is killed or stalled for real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.orc as orc
import pyorc
import pytest

from lakehouse.defs.ods import orc_statistics
from lakehouse.defs.ods.footers import FileFault, check_footer, check_footers
from lakehouse.defs.ods.intake import FOOTER_TAIL_BYTES, RowCounts, read_rows
from lakehouse_tests.conftest import ods_table

ROW = {"vin": "VIN001", "device_id": "D1", "report_time": "2025-09-17 23:00:00",
       "lng": 120.0, "lat": 30.0, "speed": 10.0, "raw_payload": "p"}  # fmt: skip
ORC_SCHEMA = (
    "struct<vin:string,device_id:string,report_time:string,lng:double,lat:double,"
    "speed:double,raw_payload:string>"
)
CHILD_MODULE = orc_statistics.__name__


def _pyorc_file(path: Path, rows: int, **options) -> Path:
    with open(path, "wb") as out, pyorc.Writer(out, ORC_SCHEMA, **options) as writer:
        writer.writerows((f"V{i:09d}", "d", "t", 1.0, 1.0, 1.0, "p") for i in range(rows))
    return path


def _many_stripes(path: Path, rows: int = 150_000) -> Path:
    """A valid file of ~rows/5 tiny stripes, each bounded on its own: seconds of checking."""
    return _pyorc_file(
        path, rows, stripe_size=256 << 10, batch_size=5, compression=pyorc.CompressionKind.NONE
    )


def _verdicts(files: dict[str, Path | bytes]) -> dict[str, object]:
    sources = {name: v if isinstance(v, bytes) else str(v) for name, v in files.items()}
    verdicts = check_footers(sources, dict.fromkeys(sources, "orc"))
    return {n: v.reason if isinstance(v, FileFault) else v.rows for n, v in verdicts.items()}


def test_orc_footers_are_judged_from_their_tail_as_discovery_reads_them(tmp_path):
    """The capped child bounds the strings, then the schema is read in process (both from the
    file's last bytes alone, as the DataScan sensor has them)."""
    good, wrong = tmp_path / "good.orc", tmp_path / "wrong.orc"
    orc.write_table(ods_table([ROW] * 6000), good, stripe_size=64 << 10)
    orc.write_table(pa.table({"vin": ["X"], "lat": [1]}), wrong)
    tail = good.read_bytes()[-4096:]
    check = check_footer(tail, "orc")
    assert check.rows == 6000 and 1024 <= check.batch_rows <= 256 * 1024
    with pytest.raises(FileFault, match=r"schema mismatch: missing column 'device_id'"):
        check_footer(wrong.read_bytes(), "orc")
    with pytest.raises(FileFault, match="unreadable orc footer"):
        check_footer(b"ORC" + b"\x07" * 300, "orc")


def test_the_orc_footer_child_loads_no_pyarrow(tmp_path):
    """Its start-up is paid by every hour with ORC in it: pyarrow alone would triple it."""
    path = tmp_path / "good.orc"
    orc.write_table(ods_table([ROW, ROW]), path)
    probe = (
        "import sys; from lakehouse.defs.ods.orc_statistics import _child; "
        "_child([(sys.argv[1], True)]); print(sorted(m for m in sys.modules if m.split('.')[0] "
        "in ('pyarrow', 'pandas', 'numpy', 'dagster')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
    )
    answer = '{"rows": 2, "batch_rows": 262144, "whole_stripes": true}'
    assert done.stdout.splitlines() == [answer, "[]"]


@pytest.mark.parametrize("kind", [0, 4, 8, 48])  # boolean, bigint, binary, no such kind
def test_a_declared_type_that_contradicts_its_statistics_is_only_that_files_fault(tmp_path, kind):
    """vin declared as another type while its statistics stay string statistics: pyorc, which
    trusts the type, crashed the checker on it (and with it every file of the hour)."""
    good = _pyorc_file(tmp_path / "good.orc", 100, compression=pyorc.CompressionKind.NONE)
    payload = bytearray(good.read_bytes())
    vin_type = payload.find(b"\x22\x08\x08\x07\x20\x00\x28\x00\x30\x00")  # footer: types[1]
    assert vin_type > 0, "the footer's encoding of vin's type changed: find it again"
    payload[vin_type + 3] = kind
    for bad in (tmp_path / "bad.orc", bytes(payload[-FOOTER_TAIL_BYTES:])):
        if isinstance(bad, Path):
            bad.write_bytes(payload)
        verdicts = _verdicts({"bad": bad, "good": good})
        assert verdicts["good"] == 100
        assert verdicts["bad"].startswith("schema mismatch: column 'vin' is ")


def test_a_file_without_row_indexes_is_accepted_whole_and_from_its_tail(tmp_path):
    """Writers may leave row indexes out (Java's orc.create.index=false): then pyorc has no
    per-stripe statistics, and the file's own bound its stripes."""
    path = _pyorc_file(tmp_path / "no_index.orc", 1000, row_index_stride=0)
    assert orc.ORCFile(str(path)).read().num_rows == 1000
    assert _verdicts({"whole": path, "tail": path.read_bytes()}) == {"whole": 1000, "tail": 1000}


def test_a_footer_full_of_min_max_strings_is_refused_before_the_parent_parses_it(tmp_path):
    """One 17 MiB payload among 300 rows is within the declared-size bound (300 x 64 KiB), but
    as the column's max it sits in the footer, which the parent would then parse uncapped."""
    rows = [{**ROW, "raw_payload": f"p{i}"} for i in range(299)]
    rows.append({**ROW, "raw_payload": "z" * (17 << 20)})
    path = tmp_path / "fat_footer.orc"
    orc.write_table(ods_table(rows), path, compression="zstd")
    assert path.stat().st_size < 1 << 20
    verdicts = _verdicts({"whole": path, "tail": path.read_bytes()[-FOOTER_TAIL_BYTES:]})
    for reason in verdicts.values():
        assert "bytes of min/max strings" in reason and "refused before" in reason


def test_a_killed_checker_costs_only_the_file_it_was_reading(tmp_path):
    """A child killed mid-file (as the OOM killer would) refuses that file; a fresh child
    judges the rest."""
    slow = _many_stripes(tmp_path / "slow.orc")
    good = _pyorc_file(tmp_path / "good.orc", 10)
    killed = []

    def kill_the_checker() -> None:
        deadline = time.monotonic() + 30
        while not killed and time.monotonic() < deadline:
            for pid in _children_running(CHILD_MODULE):
                time.sleep(0.5)  # well into the slow file
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_the_checker)
    killer.start()
    verdicts = _verdicts({"slow": slow, "good": good})
    killer.join()
    assert killed, "the checker child was never seen running"
    assert verdicts == {
        "slow": "the capped ORC footer reader died reading it (SIGKILL): refused",
        "good": 10,
    }


def test_a_stalled_checker_costs_only_the_file_it_was_reading(tmp_path, monkeypatch):
    slow = _many_stripes(tmp_path / "slow.orc")
    good = _pyorc_file(tmp_path / "good.orc", 10)
    monkeypatch.setattr(orc_statistics, "ORC_CHECK_TIMEOUT_S", 1.5)
    started = time.monotonic()
    verdicts = _verdicts({"slow": slow, "good": good, "also_good": good})
    assert verdicts == {
        "slow": "its ORC footer took more than 1.5 s to read",
        "good": 10,
        "also_good": 10,
    }
    assert time.monotonic() - started < 10  # the slow file was not read to its end


def test_a_checker_that_cannot_start_fails_loudly_not_as_a_quarantine(tmp_path, monkeypatch):
    """No file makes the child exit with an error of its own: that is the deployment's."""
    good = _pyorc_file(tmp_path / "good.orc", 10)
    monkeypatch.setattr(orc_statistics, "__name__", "lakehouse.defs.ods.no_such_module")
    with pytest.raises(RuntimeError, match=r"checker failed \(exit 1\).*No module named"):
        _verdicts({"good": good})


def _children_running(module: str) -> list[int]:
    """Processes of this one whose command line runs ``module``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and module.encode() in command:
            found.append(int(entry))
    return found


def test_stripes_too_large_to_decode_at_once_are_streamed_in_bounded_batches(tmp_path):
    """12,000 rows of one legal 60 KB payload: a 9 KB file whose one stripe decodes to 720 MB.
    Read a stripe at a time, it took 1.8 GB; streamed, batches keep to the footer's bound."""
    rows = [{**ROW, "vin": f"VIN{i:05d}", "raw_payload": "x" * 60_000} for i in range(12_000)]
    path = tmp_path / "legal_but_large.orc"
    orc.write_table(ods_table(rows), path, compression="zstd", dictionary_key_size_threshold=1.0)
    assert path.stat().st_size < 64 << 10
    check = check_footer(str(path), "orc")
    assert not check.whole_stripes and check.batch_rows < 2000
    counts = RowCounts()
    sizes, vins = [], []
    for batch in read_rows(str(path), "orc", check, counts):
        sizes.append(batch.num_rows)
        vins += batch.column("vin").to_pylist()
    assert max(sizes) <= check.batch_rows and sum(sizes) == 12_000 == counts.read
    assert vins == [r["vin"] for r in rows]  # in the file's order
    # Memory, in a fresh process: a stripe at a time grew it by ~1.6 GB, streaming by ~0.5 GB.
    probe = (
        "import resource, sys; from lakehouse.defs.ods.footers import check_footer; "
        "from lakehouse.defs.ods.intake import RowCounts, read_rows; "
        "check = check_footer(sys.argv[1], 'orc'); "
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "sum(b.num_rows for b in read_rows(sys.argv[1], 'orc', check, RowCounts())); "
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) >> 10)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
    )
    assert int(done.stdout) < 1024, f"reading grew the process by {done.stdout.strip()} MiB"
    small = tmp_path / "small.orc"
    orc.write_table(ods_table(rows[:10]), small)
    assert check_footer(str(small), "orc").whole_stripes  # the fast path for ordinary stripes
