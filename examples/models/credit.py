"""A team's own model code, as `kind: custom` runs it (docs/guides/your-model.md).

Each function returns an unfitted scikit-learn-compatible estimator; driftline calls it with
`training.estimator.params` as keyword arguments, then sets every `random_state` in it from
`training.seed`. This module travels inside the registered model: the model server and a Dask
worker on another machine run it without this repository.
"""

from sklearn.compose import make_column_selector, make_column_transformer
from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OrdinalEncoder


def make_model(max_iter: int = 200, learning_rate: float = 0.05, C: float = 1.0):
    """Boosted trees and a logistic regression, their probabilities averaged. driftline's
    preprocessing (one_hot) hands it standardized numbers and one-hot categories."""
    trees = HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=learning_rate, min_samples_leaf=40)
    linear = LogisticRegression(C=C, max_iter=1000)
    return VotingClassifier([("trees", trees), ("linear", linear)], voting="soft")


def own_pipeline(max_iter: int = 200):
    """A Pipeline that does its own encoding (`preprocessing: none`): it receives the raw and
    derived columns as a DataFrame, text categories included. An unknown category is its encoder's
    business: here the code -1, which the trees treat as a value of its own."""
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
    encode = make_column_transformer((codes, make_column_selector(dtype_include=object)), remainder="passthrough")
    return make_pipeline(encode, HistGradientBoostingClassifier(max_iter=max_iter, learning_rate=0.05))
