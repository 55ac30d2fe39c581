"""The library internals the serving plan's fast paths (core/fast_predict.py) read, pinned: an
upgrade of scikit-learn, XGBoost or LightGBM that moves one of them fails here, in CI, rather than
leaving the plan to find it at load (it would then serve through the Pipeline, and say why).

A digest is of the function's source as installed. When one changes: read the new source beside
core/fast_predict.py, change the fast path if the computation moved, then update the digest."""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path

import pytest

from driftline.core import estimators

PINNED = {
    "sklearn: BaseHistGradientBoosting._raw_predict": "20a842a01272c4b6",
    "sklearn: BaseHistGradientBoosting._predict_iterations": "57b26f4b786bed0d",
    "sklearn: BaseHistGradientBoosting._preprocess_X": "db6b8033da564e03",
    "sklearn: HistGradientBoostingClassifier.predict_proba": "ca281b8262ba6b56",
    "sklearn: HistGradientBoostingRegressor.predict": "2e0e7c6e2db3d7df",
    "sklearn: TreePredictor.predict": "dec8c8d2a837a183",
    "sklearn: _BinMapper.make_known_categories_bitsets": "708cbd888a99b5f4",
    "sklearn: HalfBinomialLoss.predict_proba": "21e9432f0505ce8f",
    "sklearn: HalfMultinomialLoss.predict_proba": "cba074baf5624c65",
    "sklearn: FixedThresholdClassifier.predict_proba": "c78f711ac0d354b2",
    "xgboost: XGBModel.predict": "f2c9748f13873bdd",
    "xgboost: XGBModel._get_iteration_range": "9e7186b414a47a00",
    "xgboost: XGBClassifier.predict_proba": "97889a2cd50c8aa2",
    "xgboost: _cls_predict_proba": "ec72b2432e19a393",
    "lightgbm: LGBMModel.predict": "cfc266c077ff7f12",
    "lightgbm: LGBMClassifier.predict_proba": "71802720bb28bd90",
}
PREDICTOR_PYX = "8c8e3e6408e42d47"  # sklearn's _predictor.pyx: _predict_from_raw_data, called per tree


def _objects() -> dict:
    import lightgbm.sklearn as lgb
    import xgboost.sklearn as xgb
    from sklearn._loss import loss
    from sklearn.ensemble._hist_gradient_boosting import binning, predictor
    from sklearn.ensemble._hist_gradient_boosting import gradient_boosting as hgb
    from sklearn.model_selection import FixedThresholdClassifier

    base = hgb.BaseHistGradientBoosting
    return {
        "sklearn: BaseHistGradientBoosting._raw_predict": base._raw_predict,
        "sklearn: BaseHistGradientBoosting._predict_iterations": base._predict_iterations,
        "sklearn: BaseHistGradientBoosting._preprocess_X": base._preprocess_X,
        "sklearn: HistGradientBoostingClassifier.predict_proba": hgb.HistGradientBoostingClassifier.predict_proba,
        "sklearn: HistGradientBoostingRegressor.predict": hgb.HistGradientBoostingRegressor.predict,
        "sklearn: TreePredictor.predict": predictor.TreePredictor.predict,
        "sklearn: _BinMapper.make_known_categories_bitsets": binning._BinMapper.make_known_categories_bitsets,
        "sklearn: HalfBinomialLoss.predict_proba": loss.HalfBinomialLoss.predict_proba,
        "sklearn: HalfMultinomialLoss.predict_proba": loss.HalfMultinomialLoss.predict_proba,
        "sklearn: FixedThresholdClassifier.predict_proba": FixedThresholdClassifier.predict_proba,
        "xgboost: XGBModel.predict": xgb.XGBModel.predict,
        "xgboost: XGBModel._get_iteration_range": xgb.XGBModel._get_iteration_range,
        "xgboost: XGBClassifier.predict_proba": xgb.XGBClassifier.predict_proba,
        "xgboost: _cls_predict_proba": xgb._cls_predict_proba,
        "lightgbm: LGBMModel.predict": lgb.LGBMModel.predict,
        "lightgbm: LGBMClassifier.predict_proba": lgb.LGBMClassifier.predict_proba,
    }


def _digest(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()[:16]


@pytest.mark.parametrize("name", list(PINNED))
def test_the_internals_the_fast_paths_read_are_the_ones_they_were_written_against(name):
    found = _digest(inspect.getsource(_objects()[name]))
    assert found == PINNED[name], (f"{name} changed (digest {found}): re-read it against core/fast_predict.py, "
                                   "then update PINNED")


def test_the_tree_walk_each_fast_tree_call_runs_is_pinned_too():
    from sklearn.ensemble._hist_gradient_boosting import predictor

    source = Path(predictor.__file__).with_name("_predictor.pyx")
    assert _digest(source.read_bytes()) == PREDICTOR_PYX, "sklearn's _predictor.pyx changed: re-read it"


def test_every_fast_path_the_registry_names_exists_and_is_found_by_the_estimators_class():
    import importlib

    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    named = {k.name: k.fast for k in estimators.KINDS.values() if k.fast}
    assert set(named) == {"hist_gradient_boosting", "xgboost", "lightgbm"}
    for path in named.values():
        module, _, attribute = path.partition(":")
        assert callable(getattr(importlib.import_module(module), attribute))
    assert estimators.of_estimator(HistGradientBoostingClassifier()).name == "hist_gradient_boosting"
    assert estimators.of_estimator(RandomForestClassifier()).name == "random_forest"

    class Subclass(HistGradientBoostingClassifier):  # may predict otherwise: no kind's fast path
        pass

    assert estimators.of_estimator(Subclass()) is None
