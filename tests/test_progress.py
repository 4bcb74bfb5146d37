"""Progress forwarding: a stage's tqdm bar inside a papermill kernel reaches the runner's terminal.

The unit tests drive both ends of the event file by hand; the notebook test runs a real kernel, where
``tqdm.auto`` is the ipywidget and the kernel's stderr is captured, to show the bar still gets through.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import nbformat
import pytest

from cltrlib import progress
from cltrlib.progress import PROGRESS_FILE_ENV, PROGRESS_LABEL_ENV, Console, ProgressTail, tqdm
from cltrlib.reproduce import run_notebook, timing_table


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_bar_mirrors_open_updates_and_close_to_the_file(tmp_path, monkeypatch):
    sink = tmp_path / "events.jsonl"
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(sink))
    monkeypatch.setenv(PROGRESS_LABEL_ENV, "02_code_eval")
    shown = io.StringIO()
    bar = tqdm(total=3, desc="generate", unit="problem", file=shown)
    for _ in range(3):
        bar.update()
    bar.close()
    events = _events(sink)
    assert [e["event"] for e in events][0] == "open" and events[-1]["event"] == "close"
    assert events[-1]["n"] == 3 and events[-1]["total"] == 3 and events[-1]["desc"] == "generate"
    assert events[-1]["text"].startswith("[02_code_eval] generate: 100%")
    assert "3/3" in events[-1]["text"] and "problem/s" in events[-1]["text"]
    assert "generate" in shown.getvalue()  # the ordinary bar is still drawn where tqdm draws it


def test_updates_are_throttled_but_the_last_count_always_arrives(tmp_path, monkeypatch):
    sink = tmp_path / "events.jsonl"
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(sink))
    for _ in tqdm(range(2000), desc="fast", file=io.StringIO(), mininterval=0):
        pass
    events = _events(sink)
    assert len(events) < 50  # not one event per item
    assert events[-1]["event"] == "close" and events[-1]["n"] == 2000


def test_disabled_bars_and_unset_variable_mirror_nothing(tmp_path, monkeypatch):
    sink = tmp_path / "events.jsonl"
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(sink))
    for _ in tqdm(range(3), disable=True):
        pass
    assert not sink.exists()
    monkeypatch.delenv(PROGRESS_FILE_ENV)
    list(progress.progress(range(3), file=io.StringIO()))
    assert not sink.exists()


def test_an_unwritable_progress_file_never_breaks_the_stage(tmp_path, monkeypatch):
    monkeypatch.setenv(PROGRESS_FILE_ENV, str(tmp_path / "no" / "such" / "dir" / "events.jsonl"))
    assert sum(tqdm(range(5), file=io.StringIO())) == 10


def test_the_tail_waits_for_a_whole_line(tmp_path):
    sink = tmp_path / "events.jsonl"
    seen: list[dict] = []
    tail = ProgressTail(sink, seen.append)
    tail.read_new()  # no file yet: nothing, no error
    line = json.dumps({"event": "update", "id": "1", "n": 1}) + "\n"
    sink.write_text("not json\n" + line[:10], encoding="utf-8")
    tail.read_new()
    assert seen == []
    with open(sink, "a", encoding="utf-8") as fh:
        fh.write(line[10:])
    tail.read_new()
    assert seen == [{"event": "update", "id": "1", "n": 1}]


def _event(kind: str, n: int, *, id: str = "1", desc: str = "generate", total: int = 4, leave: bool = True) -> dict:
    return {"event": kind, "id": id, "label": "02_code_eval", "n": n, "total": total, "elapsed": 2.0, "desc": desc,
            "rate": 0.5, "leave": leave, "t": 0.0}


def test_console_in_a_log_file_prints_sections_bars_and_status_lines():
    out = io.StringIO()
    console = Console(out, live=False, interval=0.0)
    console.start_notebook("02_code_eval")
    console.start_cell(3, 10, section="02 · Code evaluation")
    console.on_event(_event("open", 0, id="outer", desc="transfer runs", total=12))
    console.on_event(_event("update", 1, id="inner", desc="train", leave=False))
    assert "transfer runs 0/12 > train:  25%" in console.status_line()
    assert console.status_line().startswith("[02_code_eval 3/10] ")
    console.on_event(_event("close", 4, id="inner", desc="train", leave=False))  # leave=False: no line of its own
    console.on_event(_event("close", 12, id="outer", desc="transfer runs", total=12))
    console.end_notebook()
    text = out.getvalue()
    assert "[02_code_eval] 02 · Code evaluation\n" in text
    assert "[02_code_eval] transfer runs: 100%" in text and "12/12" in text
    assert "[02_code_eval] train:" not in text
    assert "\r" not in text  # a log file gets lines, not carriage-return frames


def test_console_on_a_terminal_rewrites_one_line_within_the_width(monkeypatch):
    monkeypatch.setattr(Console, "_width", lambda self: 60)
    out = io.StringIO()
    console = Console(out, live=True)
    console.start_notebook("04_lora_transfer")
    console.start_cell(1, 2)
    console.on_event(_event("update", 2, desc="a rather long description of the stage that goes on"))
    frames = out.getvalue().split("\r")
    assert all(len(f.replace("\x1b[K", "")) <= 59 for f in frames)
    assert frames[-1].startswith("[04_lora_transfer 1/2] ")


def test_the_live_line_keeps_time_between_events():
    """A decode group can take minutes: elapsed keeps running and an overdue item stretches the estimate."""
    console = Console(io.StringIO(), live=False, interval=3600)
    console.start_notebook("02_code_eval")
    console.start_cell(4, 7)
    console.on_event({**_event("update", 2, total=3), "elapsed": 40.0, "rate": 0.05})
    console._bars["1"]["seen"] -= 60  # a minute later, no new event
    assert "2/3 [01:40<00:50," in console.status_line()  # 100 s in; 2 items per 100 s, 1 to go


def test_timing_table_lists_every_notebook_and_the_total():
    table = timing_table([("01_build_jhumaneval.ipynb", 12.34, "ok"), ("02_code_eval.ipynb", 100.0, "FAILED")])
    lines = table.splitlines()
    assert lines[0].split() == ["notebook", "seconds", "status"]
    assert lines[1].split() == ["01_build_jhumaneval.ipynb", "12.3", "ok"]
    assert lines[2].split() == ["02_code_eval.ipynb", "100.0", "FAILED"]
    assert lines[3].split() == ["total", "112.3", "1", "failed"]


@pytest.mark.notebook
def test_a_kernel_bar_reaches_the_console_and_the_notebook_keeps_its_widget(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 99 · Progress check"),
        nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("## 1 · A bar"),
        nbformat.v4.new_code_cell("from cltrlib.progress import tqdm\nprint('[check] before the bar')\n"
                                  "print('an untagged line')\nfor _ in tqdm(range(5), desc='items'):\n    pass"),
    ]
    path = tmp_path / "99_check.ipynb"
    nbformat.write(nb, path)
    out = io.StringIO()
    with Console(out, live=False, interval=3600) as console:
        executed = run_notebook(path, "smoke", out_dir=tmp_path / "executed", console=console)
    text = out.getvalue()
    assert "[99_check] 1 · A bar\n" in text
    assert "[99_check] [check] before the bar\n" in text and "untagged" not in text
    assert "[99_check] items: 100%" in text and "5/5" in text
    outputs = [o for c in nbformat.read(executed, as_version=4).cells for o in c.get("outputs", [])]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert not any("items: 100%" in "".join(o.get("text", "")) for o in outputs)  # no text bar in the notebook


def test_run_order_waits_for_run_after_and_puts_run_after_others_last(tmp_path):
    import json

    from cltrlib.reproduce import notebook_paths

    def nb(name: str, **meta) -> None:
        (tmp_path / name).write_text(json.dumps({"cells": [], "metadata": {"cltr": meta}, "nbformat": 4,
                                                 "nbformat_minor": 5}), encoding="utf-8")

    nb("00_explorer.ipynb", run_after_others=True)
    nb("01_a.ipynb")
    nb("03_cltr.ipynb", run_after=["07"])
    nb("05_b.ipynb")
    nb("07_pretrain.ipynb")
    names = [p.name for p in notebook_paths(folder=tmp_path)]
    assert names == ["01_a.ipynb", "05_b.ipynb", "07_pretrain.ipynb", "03_cltr.ipynb", "00_explorer.ipynb"]
    # without the notebook it waits for, it keeps its reading-order place
    assert [p.name for p in notebook_paths(["01", "03"], folder=tmp_path)] == ["01_a.ipynb", "03_cltr.ipynb"]
    nb("07_pretrain.ipynb", run_after=["03"])
    import pytest

    with pytest.raises(ValueError, match="cycle"):
        notebook_paths(folder=tmp_path)
