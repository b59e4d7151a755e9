"""Random sequences of Entra operations, target scope changes and target failures converge."""

from __future__ import annotations

from hypothesis.stateful import run_state_machine_as_test

from tests.faults.machine import EntraSequences, chosen_settings


def test_random_entra_sequences_converge_on_every_target(bridge, fakes):
    EntraSequences.bridge = bridge
    EntraSequences.fakes = fakes
    run_state_machine_as_test(EntraSequences, settings=chosen_settings())
