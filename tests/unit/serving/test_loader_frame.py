"""The server's input frame is the frame the model was gated on: a missing category arrives as
JSON null and must reach the model as training's frames.features gives it (None, object dtype)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.core import demo_data, frames, training
from driftline.serving.loader import Loaded


def test_a_missing_category_reaches_the_model_as_it_did_in_training(params):
    parts = training.split(demo_data.generate(3000, 5), params)
    model = training.train(parts.train, params)
    offline = frames.features(parts.holdout.head(20), params.data)
    offline.loc[offline.index[:10], "loan_purpose"] = None
    columns = {f.name: "double" if f.type == "numeric" else "string" for f in params.data.features}
    loaded = Loaded("1", model, columns, offline.head(1), True)
    records = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
               for r in offline.to_dict("records")]
    served = loaded.frame(records)
    assert served["loan_purpose"].dtype == object and served["loan_purpose"].iloc[0] is None
    pd.testing.assert_frame_equal(served, offline.reset_index(drop=True), check_dtype=True)
    np.testing.assert_array_equal(model.predict_proba(served), model.predict_proba(offline))
