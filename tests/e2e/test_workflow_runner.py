"""The template runner itself: an expression it does not know fails loudly, never passes."""

from __future__ import annotations

import pytest

from tests.e2e.workflow_runner import Evaluator, UnsupportedExpression, _environment_file


def evaluator(failed: bool = False) -> Evaluator:
    contexts = {"secrets": {"KEY": "s3cret"}, "vars": {}, "env": {"A": "1"},
                "github": {"event_name": "push", "event": {"pull_request": {"number": 7}}},
                "steps": {"plan": {"outputs": {"code": "2"}}}, "inputs": {"python-version": ""}}
    return Evaluator(contexts, failed)


@pytest.mark.parametrize("expression", [
    "${{ matrix.python }}", "${{ needs.plan.outputs.x }}", "${{ hashFiles('x') }}",
    "${{ contains(github.event_name, 'p') }}", "${{ 1 < 2 }}"])
def test_unknown_contexts_functions_and_operators_raise(expression):
    with pytest.raises(UnsupportedExpression):
        evaluator().interpolate(expression)


def test_the_expressions_the_templates_use():
    ev = evaluator()
    assert ev.interpolate("n-${{ github.event.pull_request.number }}") == "n-7"
    assert ev.interpolate("${{ secrets.KEY }}|${{ vars.UNSET }}|${{ env.A }}") == "s3cret||1"
    assert ev.condition("steps.plan.outputs.code == '0' || steps.plan.outputs.code == '2'")
    assert not ev.condition("steps.plan.outputs.code != '0' && steps.plan.outputs.code != '2'")
    assert ev.condition("github.event_name == 'push'") and not ev.condition(
        "github.event_name == 'workflow_dispatch'")
    assert not ev.condition("inputs.python-version != ''")
    assert ev.condition("always() && steps.plan.outputs.code != ''")


def test_after_a_failed_step_only_always_and_failure_conditions_run():
    ev = evaluator(failed=True)
    assert not ev.condition("github.event_name == 'push'"), "implicit success()"
    assert ev.condition("always()") and ev.condition("failure()")
    assert not ev.condition("success()")


def test_environment_files_with_heredoc_blocks():
    assert _environment_file("a=1\nb<<EOF\nx=y\nz\nEOF\nc=3=4\n") == {
        "a": "1", "b": "x=y\nz", "c": "3=4"}
