"""`Secrets`: what expanding a `${VAR}` gives, and what scrubbing takes out of a text."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from headwater.contracts.secrets import Secrets

PASSWORD = "Zq9SeCrEt/h@x0rQ:pa55%2Fword?#frag"


def test_a_password_in_a_url_is_percent_encoded_so_the_url_still_parses() -> None:
    secrets = Secrets({"PW": PASSWORD, "USER": "ann@corp"})

    url = secrets.expand("postgresql://${USER}:${PW}@db.internal:5432/shop", where="x")

    parsed = sa.engine.make_url(url)
    assert (parsed.username, parsed.password) == ("ann@corp", PASSWORD)
    assert (parsed.host, parsed.port, parsed.database) == ("db.internal", 5432, "shop")


def test_outside_the_user_part_a_value_is_expanded_as_it_is() -> None:
    secrets = Secrets({"T": "a/b?c"})
    assert secrets.expand("https://h/x?t=${T}", where="x") == "https://h/x?t=a/b?c"
    assert secrets.expand("Bearer ${T}", where="x") == "Bearer a/b?c"


@pytest.mark.parametrize(
    "text",
    [
        "invalid literal for int() with base 10: 'Zq9SeCrEt'",  # what a URL parser quotes
        "password authentication failed near pa55%2Fword",
        "no such file: /data/pa55/word/frag",  # URL-decoded and split as a path
        f"connect to {PASSWORD}",
        "url was Zq9SeCrEt%2Fh%40x0rQ%3Apa55%252Fword%3F%23frag",  # percent-encoded whole
    ],
)
def test_scrubbing_takes_out_every_fragment_a_parser_could_quote(text: str) -> None:
    secrets = Secrets({"PW": PASSWORD})
    secrets.expand("${PW}", where="x")

    scrubbed = secrets.scrub(text)

    for piece in ("Zq9SeCrEt", "x0rQ", "pa55", "word", "frag"):
        assert piece not in scrubbed, scrubbed


def test_learn_scrubs_what_other_code_expanded_from_the_same_environment() -> None:
    secrets = Secrets({"TOKEN": "tok-123456", "UNUSED": "other-999"})
    secrets.learn("https://api/${TOKEN}/x ${MISSING}")
    assert secrets.scrub("401 for tok-123456 and other-999") == "401 for *** and other-999"


def test_values_too_short_to_be_credentials_are_not_masked() -> None:
    secrets = Secrets({"STAGE": "1", "ENV": "dev"})
    assert secrets.expand("s3://b-${STAGE}-${ENV}/lake", where="x") == "s3://b-1-dev/lake"
    assert secrets.scrub("1 row landed in dev") == "1 row landed in dev"
