"""What good and bad look like for one regression: the criterion its probes are judged by,
and whether a later night is good again (the regression is then fixed)."""

from __future__ import annotations

import math

import numpy as np

from stackci.errors import UsageError
from stackci.regressions.changepoint import DEFAULT, NoiseConfig
from stackci.regressions.findings import Finding, FindingKind
from stackci.regressions.metrics import Kind, kind_of
from stackci.regressions.probe import GOOD, WALL_CLOCK_REPEATS, Criterion
from stackci.regressions.regression import Regression
from stackci.regressions.series import NOT_RUN, PASSED, Point, Series


def criterion_for(finding: Finding | Regression, series: Series | None = None,
                  repeats: int = WALL_CLOCK_REPEATS, config: NoiseConfig = DEFAULT
                  ) -> Criterion:
    """Outcome flips judge statuses, deterministic figures the two values, wall-clock figures
    the measured points on either side of the change (at most `config.window` each)."""
    if finding.kind is FindingKind.OUTCOME:
        return Criterion(Kind.OUTCOME, (PASSED,), (finding.first_bad.status,))
    metric = kind_of(finding.series.metric)
    if metric.kind is Kind.DETERMINISTIC:
        return Criterion(Kind.DETERMINISTIC, (finding.last_good.value,),
                         (finding.first_bad.value,), 1, config)
    if series is None:
        raise UsageError(f"{finding.series}: a wall-clock regression needs its series to "
                         f"know what good and bad measure")
    points = series.measured()
    runs = [p.run_id for p in points]
    cut = runs.index(finding.first_bad.run_id)
    good = tuple(p.value for p in points[max(0, cut - config.window):cut])
    bad = tuple(p.value for p in points[cut:cut + config.window])
    return Criterion(Kind.WALL_CLOCK, good, bad, repeats, config)


def back_to_good(regression: Regression, series: Series,
                 config: NoiseConfig = DEFAULT) -> Point | None:
    """The newest point after the first bad one when the series measures good again, else
    None. Deterministic: the newest value is judged good. Wall-clock: the median of the newest
    `min_size` points lies on the good side of half-way (log space) between the good and bad
    medians; a test with so few points could not prove a return, only fail to see one."""
    if regression.kind is FindingKind.OUTCOME:
        later = [p for p in series.points if p.run_time > regression.first_bad.run_time
                 and p.status != NOT_RUN]
        return later[-1] if later and later[-1].status == PASSED else None
    points = [p for p in series.measured() if p.run_time > regression.first_bad.run_time]
    criterion = criterion_for(regression, series, config=config)
    if criterion.kind is Kind.DETERMINISTIC:
        if points and criterion.judge([points[-1].value])[0] == GOOD:
            return points[-1]
        return None
    if len(points) < config.min_size:
        return None
    good, bad = float(np.median(criterion.good)), float(np.median(criterion.bad))
    now = float(np.median([p.value for p in points[-config.min_size:]]))
    return points[-1] if math.log(now / good) / math.log(bad / good) < 0.5 else None
