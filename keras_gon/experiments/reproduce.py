"""`keras-gon experiment reproduce`: the paper's claims, run as one resumable study.

The study (`reproduction_specs`) trains, at the paper's setting and at the
library's default (`study.SETTINGS`):

- *decisive*: GON, autoencoder, variational GON and VAE at latent 32 and 256
  (Tables 1-2; the generalisation gap of figs. 2c/16);
- *table1*: the tied autoencoder, the 1-step detached GON and GLO;
- *multistep*: the 10-step GON with and without detach;
- *activations*: the GON with each activation of the budget at latent 32, 128 and 512
  (fig. 3);
- *origin*: the GON from z0 ~ N(0, σ²), appendix C's variants (a) and (b) (fig. 11);
- *diagnostics*: runs that test explanations of what does not reproduce (among them
  the autoencoder and VAE with a linear encoder, the class of a GON's encoder, shown
  beside the decisive runs);
- *widths*, *latents*, *spatial* (CIFAR-10): fig. 10's sweeps of GON against AE;
- *remedies*: the variational GON with the paper's remedies against the VAE.

Each dataset (`DATASETS`) has its budget and groups; several datasets make one study
folder and report each, and a summary of the paper's summary rows (`write_summary`).

`write_report` turns whatever is stored into `REPRODUCTION.md`: a verdict per
claim (reproduced, not reproduced, or reversed), the tables behind it with
mean ± std over seeds, the budget, and the cells still missing. A section
between `<!-- analysis -->` and `<!-- /analysis -->` in an existing report is
kept when the report is regenerated.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

from keras_gon.errors import InputError
from keras_gon.experiments.plan import (  # noqa: F401 (the study's names, in one place)
    BUDGETS,
    DATASETS,
    GROUPS,
    LINEAR_ENCODER,
    PAPER_VGON,
    VGON_REMEDIES,
    DatasetPlan,
    ReproductionBudget,
    get_dataset_plan,
    reproduction_specs,
)
from keras_gon.experiments.report import (  # noqa: F401
    ANALYSIS_END,
    ANALYSIS_START,
    report_markdown,
    summary_markdown,
    write_report,
    write_summary,
)
from keras_gon.experiments.study import (
    REPORTED_METRIC,  # noqa: F401
    StudyData,
    run_study,
    stored_results,
    write_json_atomically,
)
from keras_gon.experiments.verdicts import (  # noqa: F401
    PAPER_SUMMARY,
    Results,
    compare,
    dataset_summary,
)


def reproduce(
    data: str,
    out: Path,
    budget: str = "full",
    report: Path | None = None,
    groups: Sequence[str] | None = None,
    report_only: bool = False,
    command: str = "keras-gon experiment reproduce",
    log=print,
    dataset: str = "mnist",
) -> dict:
    """Runs (or continues) the study of `dataset` on the images of `data` in `out` and
    writes the report; returns the results. `groups` None runs the dataset's own
    (`DATASETS`); the `full` budget is the dataset's, `tiny` the same for all."""
    if budget not in BUDGETS:
        raise InputError(f"unknown budget {budget!r}: expected one of {tuple(BUDGETS)}")
    dataset_plan = get_dataset_plan(dataset)
    plan = dataset_plan.budget if budget == "full" else BUDGETS[budget]
    groups = dataset_plan.groups if groups is None else tuple(groups)
    study_data = StudyData(
        source=str(data),
        eval_images=plan.eval_images,
        steps_per_epoch=plan.steps_per_epoch,
        image_size=dataset_plan.image_size,
        train_images=dataset_plan.train_images,
    )
    specs = reproduction_specs(plan, groups)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report_paths = [out / "REPRODUCTION.md"] + ([Path(report)] if report else [])
    write_json_atomically(
        out / "study.json",
        {
            "dataset": dataset,
            "budget": dataclasses.asdict(plan),
            "data": dataclasses.asdict(study_data),
            "groups": list(groups),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
    )

    def rewrite(*_):
        stored = stored_results(out, specs)
        for path in report_paths:
            write_report(path, specs, stored, plan, study_data, command, dataset_plan)

    if report_only:
        rewrite()
        return stored_results(out, specs)
    from keras_gon.data import load_dataset

    load_dataset(
        study_data.source,
        image_size=study_data.image_size,  # checks the data
        batch_size=study_data.batch_size,
        train_images=study_data.train_images,
    )
    results = run_study(specs, study_data, out, on_result=rewrite, log=log)
    rewrite()
    return results
