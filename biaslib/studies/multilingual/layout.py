"""The multilingual study's files in a run folder: :class:`MultilingualLayout`, a :class:`~biaslib.layout.RunLayout`
with the paths only this study writes::

    prompts.parquet, eval_prompts.parquet     its prompt tables
    generated/<generation>/<language>/        its generated sets (data, base, finetuned)
    datasets/<variant>/                       its fine-tuning datasets
    finetuned/                                its fine-tuned pipeline
    results/multilingual/                     its result JSONs
"""

from __future__ import annotations

from pathlib import Path

from biaslib.layout import RunLayout


class MultilingualLayout(RunLayout):
    """Paths of one experiment's run folder, with the multilingual study's own."""

    @property
    def prompts(self) -> Path:
        """The training prompt table: ``<run>/prompts.parquet``."""
        return self.root / "prompts.parquet"

    @property
    def eval_prompts(self) -> Path:
        """The evaluation prompt table: ``<run>/eval_prompts.parquet``."""
        return self.root / "eval_prompts.parquet"

    def generation(self, generation: str, language: str) -> Path:
        """One generated set in one language code: ``<run>/generated/<generation>/<language>``."""
        return self.root / "generated" / generation / language

    def dataset(self, variant: str) -> Path:
        """A fine-tuning dataset's imagefolder root: ``<run>/datasets/<variant>``."""
        return self.datasets / variant

    @property
    def datasets(self) -> Path:
        """All fine-tuning datasets (and their staging folders): ``<run>/datasets``."""
        return self.root / "datasets"

    @property
    def finetuned(self) -> Path:
        """The fine-tuned pipeline and its checkpoints: ``<run>/finetuned``."""
        return self.root / "finetuned"

    @property
    def multilingual_results(self) -> Path:
        """Result JSONs of the multilingual study: ``<run>/results/multilingual``."""
        return self.study_results("multilingual")
