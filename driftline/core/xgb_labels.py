"""XGBoost's classifier, taking the class labels a table has.

XGBoost's scikit-learn classifier (since 1.6) wants the classes as 0..k-1; scikit-learn's and
LightGBM's take any labels ("low"/"medium"/"high", 1/2). This subclass encodes the labels at fit
(in sorted order, as np.unique sorts them) and answers in them; the booster, its parameters and
its probabilities are XGBoost's own, column i being the i-th sorted label. Imported only when a
model of kind xgboost is built or loaded.
"""

from __future__ import annotations

import numpy as np
import xgboost


class XGBClassifier(xgboost.XGBClassifier):
    def fit(self, X, y, **kwargs):
        labels, codes = np.unique(np.asarray(y), return_inverse=True)
        if kwargs.get("eval_set"):
            kwargs["eval_set"] = [(x, np.searchsorted(labels, np.asarray(v))) for x, v in kwargs["eval_set"]]
        self.labels_ = None  # XGBoost checks the codes against classes_ while it fits
        super().fit(X, codes, **kwargs)
        self.labels_ = labels
        return self

    @property
    def classes_(self) -> np.ndarray:
        labels = getattr(self, "labels_", None)
        return labels if labels is not None else np.arange(self.n_classes_)

    def predict(self, X, **kwargs):
        codes = super().predict(X, **kwargs)
        if kwargs.get("output_margin"):
            return codes
        return self.classes_[np.asarray(codes, dtype=int)]
