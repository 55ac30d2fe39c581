"""The training report's line on its pictures, which are drawn in a thread beside the
registration: the report links what was drawn, and a drawing that failed as a whole is a line in
the report, never an exception inside the registration's transaction (which would undo it)."""

from __future__ import annotations

from flows.training import _pictures_line


class Drawn:
    """What `registry.log_pictures.submit` gives: a future whose failure can be read as a value."""

    def __init__(self, outcome):
        self.outcome = outcome

    def result(self, raise_on_failure: bool = True):
        if raise_on_failure and isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


def test_the_report_links_each_picture_drawn():
    line = _pictures_line(Drawn(["plots/roc_pr.png", "plots/slices.png"]), "http://ui/#/runs/r1")
    assert line == ("[roc_pr](http://ui/#/runs/r1/artifacts/plots/roc_pr.png), "
                    "[slices](http://ui/#/runs/r1/artifacts/plots/slices.png)")
    assert _pictures_line(Drawn([]), "u") == "none drawn"
    assert _pictures_line(None, "u") == "switched off (registry.pictures: false)"


def test_a_drawing_that_failed_as_a_whole_is_reported_not_raised(monkeypatch):
    import flows.training

    warned = []
    monkeypatch.setattr(flows.training, "get_run_logger", lambda: type("L", (), {"warning": warned.append})())
    line = _pictures_line(Drawn(KeyError("score")), "u")
    assert line == "not drawn (KeyError: 'score')"
    assert warned == ["pictures not drawn: KeyError: 'score'"]
