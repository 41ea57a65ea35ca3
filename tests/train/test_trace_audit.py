"""The trace audit of rlenv run's evaluation: where step-by-step countdown thinking goes wrong."""

import pytest

from rlenv.train.countdown_eval import audit_traces, format_audit

TRACE = """<think>
49+31=80 [80 42]
80+42=122 vs 60 no
80-42=39 vs 60 no
80*42=3360 vs 60 ok
84/4=21 [21 9]
85/4=21 [21 9]
42+18=60 vs 61 no
42+18=60 vs 60 no
not a line 1+1=2
</think>
<answer>1+1=2</answer>
99-1=98 vs 60 ok"""


def test_counts_each_kind_of_mistake():
    audit = audit_traces([TRACE], [60])
    assert audit["audit/lines"] == 8  # the prose line and the line after </think> are not audited
    assert audit["audit/lines_add"] == 4 and audit["audit/wrong_add"] == 0.0
    assert audit["audit/lines_sub"] == 1 and audit["audit/wrong_sub"] == 1.0  # 80-42 is 38
    assert audit["audit/wrong_mul"] == 0.0 and audit["audit/wrong_div"] == 0.5  # 85/4 is not exact
    assert audit["audit/checked"] == 5
    # verdicts against the restated value: 122 no (right), 39 no (right), 3360 ok (wrong: a false ok),
    # 60 vs 61 no (right), 60 vs 60 no (wrong: a missed hit)
    assert audit["audit/wrong_verdict"] == pytest.approx(2 / 5)
    assert audit["audit/false_ok"] == pytest.approx(1 / 5)
    assert audit["audit/wrong_target"] == pytest.approx(1 / 5)  # "vs 61" for target 60


def test_averages_over_completions_and_bounds_hostile_text():
    clean = "<think>\n2+3=5 vs 5 ok\n</think>"
    hostile = [
        "9" * 100_000 + "+1=1",  # digits beyond the audited lengths: no line, no big-integer work
        "<think>" + "1+1=3\n" * 50_000,  # no </think>: only the last 16,384 characters are read
        "",
        "\x00\n+=\n1+=2\n=3",
    ]
    audit = audit_traces([clean, *hostile], [5, 2, 2, 2, 2])
    assert audit["audit/lines_add"] == pytest.approx((1 + 16_384 // 6) / 5, abs=1)
    assert 0.99 < audit["audit/wrong_add"] < 1.0
    assert audit["audit/checked"] == pytest.approx(1 / 5) and audit["audit/wrong_verdict"] == 0.0


def test_no_lines_gives_zero_shares_and_no_report():
    audit = audit_traces(["<answer>3+4</answer>"], [7])
    assert audit["audit/lines"] == 0 and audit["audit/wrong_sub"] == 0.0 and audit["audit/false_ok"] == 0.0
    assert format_audit({"base": {f"greedy/{k}": v for k, v in audit.items()}}) == ""
    with pytest.raises(ValueError, match="targets"):
        audit_traces(["a", "b"], [1])


def test_report_lists_phases_with_lines():
    rows = {
        phase: {f"greedy/{k}": v for k, v in audit_traces([text], [60]).items()}
        for phase, text in (("base", "no thinking"), ("sft", TRACE))
    }
    report = format_audit(rows)
    assert report.count("\n- ") == 1 and "- after SFT: 8.0 lines" in report
    assert "- 100%" in report and "wrong verdict 40%" in report and "wrong target 20%" in report


def test_solved_with_a_wrong_ok_line_is_counted():
    # the answer 50+85-40 = 95 is right, but its thinking reached it through 85-40=46 and "96 vs 95 ok"
    lucky = "<think>\n85-40=46 [46 50]\n50+46=96 vs 95 ok\n</think>\n<answer>50+85-40</answer>"
    honest = "<think>\n85-40=45 [45 50]\n50+45=95 vs 95 ok\n</think>\n<answer>50+85-40</answer>"
    wrong_answer = "<think>\n85-40=46 [46 50]\n50+46=96 vs 95 ok\n</think>\n<answer>50+46</answer>"
    audit = audit_traces([lucky, honest, wrong_answer], [95, 95, 95], solved=[True, True, False])
    assert audit["audit/solved_wrong_ok"] == 0.5  # of the two solved, one
    assert "audit/solved_wrong_ok" not in audit_traces([lucky], [95])
    with pytest.raises(ValueError, match="solved"):
        audit_traces([lucky], [95], solved=[True, False])
    row = {f"greedy/{k}": v for k, v in audit.items()}
    assert "solved with a wrong ok line 50%" in format_audit({"grpo": row})


def test_problems_are_bucketed_by_the_length_of_the_solvers_search():
    from rlenv.train.countdown_eval import search_bucket, search_buckets

    assert search_bucket([2, 2, 14], 10) == "1-3"  # 3 lines: the first pair's sum reaches it
    assert search_bucket([2, 17, 5], 10) == "4-7"  # 7 lines
    assert search_bucket([2, 14, 2], 10) == "8-16"  # 8 lines
    assert search_bucket([2, 2, 23], 50) == "8-16"  # 16 lines, the most a trace holds
    assert search_bucket([2, 2, 2], 10) == "over 16"  # no solution within 16 lines
    items = [{"nums": n, "target": t} for n, t in [([2, 2, 14], 10), ([2, 17, 5], 10), ([2, 8, 5], 50)]]
    figures = search_buckets(items, [True, False, True])
    assert figures["search/1-3/n"] == 1 and figures["search/1-3/accuracy"] == 1.0
    assert figures["search/4-7/n"] == 2 and figures["search/4-7/accuracy"] == 0.5
    assert figures["search/over 16/n"] == 0 and figures["search/over 16/accuracy"] == 0.0
    with pytest.raises(ValueError, match="2 items but 1"):
        search_buckets(items[:2], [True])


def test_search_report_lists_the_buckets_each_phase_has():
    from rlenv.train.countdown_eval import format_search, search_buckets

    items = [{"nums": [2, 2, 14], "target": 10}, {"nums": [2, 2, 2], "target": 10}]
    rows = {"sft": {f"greedy/{k}": v for k, v in search_buckets(items, [True, False]).items()}}
    assert format_search(rows).splitlines()[1] == "- after SFT: 1-3 lines 100% (1), over 16 lines 0% (1)"
    assert format_search({"base": {"greedy/accuracy": 0.0}}) == ""
