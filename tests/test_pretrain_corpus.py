"""Continual pre-training corpora: roff rendering, the English-prose filter, user folders, contamination check."""

from __future__ import annotations

import gzip
import json
import shutil

import pytest

from cltrlib.pretrain import contamination, corpus
from cltrlib.pretrain.corpus import CorpusError, Document

ROFF = r""".\" a comment that must not survive
.TH OPEN 2 2021-03-22 "Linux" "Linux Programmer's Manual"
.SH 名前
open, creat \- ファイルのオープン、作成を行う
.SH 書式
.nf
.B #include <fcntl.h>
.PP
.BI "int open(const char *" pathname ", int " flags );
.fi
.SH 説明
\fBopen\fP() システムコールは \fIpathname\fP で指定されたファイルをオープンする。
.PP
The return value of open() is a file descriptor, a small, nonnegative integer that is used in later calls.
"""


@pytest.fixture()
def man_tree(tmp_path):
    root = tmp_path / "man"
    (root / "man2").mkdir(parents=True)
    with gzip.open(root / "man2" / "open.2.gz", "wt", encoding="utf-8") as fh:
        fh.write(ROFF)
    return root


def test_strip_roff_keeps_text_and_drops_requests_and_escapes():
    text = corpus.strip_roff(ROFF)
    assert "comment" not in text and ".TH" not in text and "\\f" not in text
    assert "open() システムコールは pathname で指定されたファイルをオープンする。" in text
    assert "int open(const char *pathname, int flags);" in text


@pytest.mark.parametrize("use_groff", [True, False])
def test_japanese_pages_keep_japanese_and_code_and_drop_untranslated_english_prose(man_tree, monkeypatch, use_groff,
                                                                                      tmp_path):
    if use_groff and shutil.which("groff") is None:
        pytest.skip("groff is not installed")
    if not use_groff:
        monkeypatch.setattr(corpus.shutil, "which", lambda name: None)
    monkeypatch.setenv("CLTR_CACHE_DIR", str(tmp_path / "cache"))
    (doc,) = corpus.manpage_documents("ja", root=man_tree)
    assert doc.id == "man/ja/man2/open.2"
    assert "システムコール" in doc.text and "#include <fcntl.h>" in doc.text
    assert "nonnegative integer" not in doc.text  # the untranslated English paragraph
    assert "OPEN(2)" not in doc.text  # groff's running header and footer
    again = corpus.manpage_documents("ja", root=man_tree)  # read back from the cache
    assert again == [doc]


def test_english_prose_detector():
    assert corpus.is_english_prose("The return value of open() is a file descriptor, a small integer used later.")
    assert not corpus.is_english_prose("int open(const char *pathname, int flags);")
    assert not corpus.is_english_prose("open() を呼び出すと、「オープンファイル記述」 (open file description) が作成される。")


def test_missing_pages_say_which_packages_to_install(tmp_path):
    with pytest.raises(CorpusError, match="manpages-ja manpages-ja-dev"):
        corpus.manpage_documents("ja", root=tmp_path)


def test_folder_corpus_reads_txt_and_jsonl_and_names_a_bad_line(tmp_path):
    (tmp_path / "a.txt").write_text("日本語の文章。", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "一行目"}) + "\n\n" + json.dumps({"text": "二行目"}) + "\n",
                                      encoding="utf-8")
    docs = corpus.folder_documents(tmp_path, "ja")
    assert [d.text for d in docs] == ["日本語の文章。", "一行目", "二行目"]
    (tmp_path / "c.jsonl").write_text('{"body": "x"}\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"c\.jsonl:1: .*'text'"):
        corpus.folder_documents(tmp_path, "ja")


def test_grams_weigh_a_japanese_character_half_a_word():
    ja = contamination.grams(contamination.units("なければならない。"), n=2)
    assert ja[0] == ("な", "け", "れ", "ば")  # 4 characters = 2 words; punctuation dropped
    en = contamination.grams(contamination.units("Return the sorted list, please."), n=2)
    assert en[:2] == [("return", "the"), ("the", "sorted")]
    assert contamination.grams(contamination.units("short"), n=13) == [("short",)]


def test_contamination_flags_a_copied_test_sentence_but_not_a_stock_phrase():
    item = contamination.EvalItem("pud-ja", "n1", "その研究者は、新しい種類の化石が三年前に北海道の海岸で見つかったと発表した。")
    stock = Document("d1", "ja", "値が見つからなかった場合は、エラーを返さなければならない。", "t")
    copied = Document("d2", "ja", "前置き。\n\nその研究者は、新しい種類の化石が三年前に北海道の海岸で見つかったと発表した。", "t")
    assert contamination.check([stock], [item]).clean
    report = contamination.check([stock, copied], [item])
    assert report.hits == {("pud-ja", "n1"): {"d2"}}
    assert report.summary().loc[0, "contaminated"] == 1
    with pytest.raises(contamination.ContaminationError, match="pud-ja: 1/1 items"):
        report.raise_if_dirty()
    cleaned, dropped = contamination.decontaminate([stock, copied], [item])
    assert dropped == 1 and [d.text for d in cleaned] == [stock.text, "前置き。"]
    assert contamination.check(cleaned, [item]).clean


def test_evaluation_items_cover_every_set_the_notebooks_test_on():
    sets = {i.eval_set for i in contamination.evaluation_items()}
    assert {"humaneval", "jhumaneval", "sib200-test-ja", "sib200-dev-en", "pawsx-dev-ja", "pud-ja"} <= sets
