"""Results store: same config → same run; resume after a torn write; completion marker."""

from __future__ import annotations

from cltrlib.store import RunStore, config_hash, find_runs


def test_same_config_same_run_and_resume(tmp_path):
    cfg = {"model": "m", "seed": 1, "nested": {"a": [1, 2]}}
    s1 = RunStore("stage", cfg, label="m", root=tmp_path)
    s1.append([{"i": 0}, {"i": 1}])
    s2 = RunStore("stage", dict(reversed(list(cfg.items()))), label="m", root=tmp_path)
    assert s2.path == s1.path and [r["i"] for r in s2.records()] == [0, 1]
    assert RunStore("stage", {**cfg, "seed": 2}, root=tmp_path).path != s1.path
    assert config_hash({"a": 1, "b": 2}) == config_hash({"b": 2, "a": 1})


def test_torn_last_line_is_dropped_not_misread(tmp_path):
    s = RunStore("stage", {"x": 1}, root=tmp_path)
    s.append([{"i": 0}])
    with open(s.records_file, "a") as fh:
        fh.write('{"i": 1, "tru')  # a crash mid-write
    assert s.records() == [{"i": 0}]
    s.append([{"i": 1}])
    assert [r["i"] for r in s.records()] == [0, 1]


def test_completion_and_find_runs(tmp_path):
    s = RunStore("gen", {"x": 1}, root=tmp_path)
    assert not s.is_complete() and find_runs("gen", root=tmp_path) == []
    s.mark_complete({"n": 3})
    assert s.summary() == {"n": 3}
    assert [r.path for r in find_runs("gen", root=tmp_path)] == [s.path]


def test_lock_serialises_two_workers_on_the_same_run(tmp_path):
    import threading
    import time

    s = RunStore("gen", {"x": 1}, root=tmp_path)
    order = []
    held = threading.Event()

    def first():
        with s.lock():
            held.set()
            time.sleep(0.3)
            order.append("first-done")

    def second():
        held.wait()
        with RunStore("gen", {"x": 1}, root=tmp_path).lock():
            order.append("second-in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert order == ["first-done", "second-in"]
