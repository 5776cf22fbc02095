"""A skewed clock against the SORACOM API (issue 18): a TOTP code made with a clock two
hours fast is refused by SORACOM; gw compares the answer's Date header with its own clock
and says the clock is off, and by how much, instead of only "wrong, expired or already used"."""

from __future__ import annotations


def test_a_refused_code_from_a_fast_clock_names_the_offset(sora):
    sora.api.advance(-7200)  # SORACOM's clock (and its Date header) two hours behind ours
    result = sora.home.run_in_process("soracom-token", "--profile", "sora-mfa-session")
    sora.stderr_seen.append(result.stderr)
    assert result.returncode != 0 and result.stdout == ""
    errors = sora.errors(result)
    assert len(errors) == 1, result.stderr
    assert "SORACOM rejected the MFA code" in errors[0]
    assert "this computer's clock is 2 h 0 min ahead of the SORACOM API's (by its Date header)" in errors[0]


def test_a_refused_code_with_a_right_clock_says_nothing_of_clocks(sora):
    sora.home.run_in_process("vault", "set", "seed", input="GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")  # another seed
    result = sora.home.run_in_process("soracom-token", "--profile", "sora-mfa-session")
    sora.stderr_seen.append(result.stderr)
    assert result.returncode != 0
    assert "wrong, expired or already used" in result.stderr and "clock" not in result.stderr
