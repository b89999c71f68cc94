"""The claims ledger (:mod:`steerlib.core.ledger`): every claim of every chapter is on the record, a specification
that changes without a new event fails here, and states are read off the history."""

import dataclasses
import json

import pytest

from steerlib.book import CHAPTERS, chapter
from steerlib.core import ledger
from steerlib.core.claims import Claim, Spec

SPEC = Spec(id="X1", statement="x rises", statistic="rho", op=">", threshold=0.5, why="a clear rise")


def _event(event="registered", after=False):
    return {"date": "2026-12-06", "commit": "abc1234", "event": event, "what": "w", "why": "y", "after_results": after}


@pytest.mark.parametrize("name", CHAPTERS)
def test_every_claim_is_on_the_record(name):
    """A spec with no entry, or whose fingerprint the ledger does not hold (it changed off the record), fails."""
    ch = chapter(name)
    assert ledger.problems(ch.specs, ledger.read(ch.ledger_path)) == []


def test_a_changed_threshold_without_an_event_is_caught(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"X1": {"fingerprint": SPEC.fingerprint(), "history": [_event()]}}))
    book = ledger.read(path)
    assert ledger.problems([SPEC], book) == []
    moved = dataclasses.replace(SPEC, threshold=0.4)
    assert "X1: its specification changed" in ledger.problems([moved], book)[0]
    assert "not in the ledger" in ledger.problems([dataclasses.replace(SPEC, id="X2")], book)[0]


def test_states_by_hand():
    assert ledger.state(None) == "not in the ledger"
    assert ledger.state({"history": [_event()]}) == "registered before results"
    assert ledger.state({"history": [_event(after=True)]}) == "registered after results"
    assert (
        ledger.state(
            {"history": [_event(), _event("revised", True), _event("revised", False), _event("revised", True)]}
        )
        == "revised after results (2)"
    )


def test_claims_carry_their_state():
    claim = Claim("X1", "x rises", "rho", 0.9, ">", 0.5, fingerprint=SPEC.fingerprint())
    book = {"X1": {"fingerprint": SPEC.fingerprint(), "history": [_event(), _event("revised", True)]}}
    assert ledger.with_states([claim], book, [SPEC])[0].ledger == "revised after results (1)"


def test_a_malformed_ledger_is_refused(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps({"X1": {"fingerprint": "f", "history": [_event("revised")]}}))
    with pytest.raises(ValueError, match="first event must be 'registered'"):
        ledger.read(path)
    path.write_text(json.dumps({"X1": {"fingerprint": "f", "history": [{"date": "2026-12-06"}]}}))
    with pytest.raises(ValueError, match="lacks"):
        ledger.read(path)
    assert ledger.read(tmp_path / "absent.json") == {}


def test_recording_an_event_updates_the_fingerprint(tmp_path):
    path = tmp_path / "ledger.json"
    ledger.record(path, SPEC, "registered", "the claim", "before any run", False, "2026-12-06", "abc1234")
    moved = dataclasses.replace(SPEC, threshold=0.4)
    assert ledger.problems([moved], ledger.read(path))  # changed off the record
    ledger.record(path, moved, "revised", "threshold 0.5 -> 0.4", "a reason", True, "2026-12-07", "def5678")
    assert ledger.problems([moved], ledger.read(path)) == []
    assert ledger.state(ledger.read(path)["X1"]) == "revised after results (1)"
    with pytest.raises(ValueError, match="registered once"):
        ledger.record(path, moved, "registered", "again", "no", False, "2026-12-07", "def5678")
