import pytest
from django.core.exceptions import ValidationError

from plans.validators import validate_e164, validate_eid, validate_iccid


@pytest.mark.parametrize(
    "iccid",
    [
        "8981100000000000002",  # 19 digits, docomo-style
        "89811000000000000012",  # 20 digits
        "8944500102198304826",  # a non-Japanese (UK) travel eSIM
    ],
)
def test_valid_iccids_pass(iccid):
    validate_iccid(iccid)


@pytest.mark.parametrize(
    ("iccid", "code"),
    [
        ("8981100000000000003", "iccid_check"),  # last digit changed
        ("8981100000000000020", "iccid_check"),  # two digits swapped
        ("898110000000000002", "iccid_length"),  # 18 digits
        ("898110000000000000025", "iccid_length"),  # 21 digits
        ("8981 1000 0000 0000 002", "iccid_digits"),
        ("89811000000000000A2", "iccid_digits"),
        ("1981100000000000009", "iccid_prefix"),
        ("", "iccid_digits"),
    ],
)
def test_invalid_iccids_name_the_problem(iccid, code):
    with pytest.raises(ValidationError) as error:
        validate_iccid(iccid)
    assert error.value.code == code


def test_valid_eid_passes():
    validate_eid("89049032000000000000000000000163")


@pytest.mark.parametrize(
    ("eid", "code"),
    [
        ("89049032000000000000000000000164", "eid_check"),
        ("89049032000000000000000000000136", "eid_check"),
        ("8904903200000000000000000000016", "eid_length"),
        ("890490320000000000000000000001630", "eid_length"),
        ("8904903200000000000000000000016X", "eid_length"),
    ],
)
def test_invalid_eids_name_the_problem(eid, code):
    with pytest.raises(ValidationError) as error:
        validate_eid(eid)
    assert error.value.code == code


@pytest.mark.parametrize("number", ["+819012345678", "+81312345678", "+8613800138000", "+14155552671"])
def test_valid_e164_numbers_pass(number):
    validate_e164(number)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("09012345678", "e164_format"),  # national form
        ("+81 90 1234 5678", "e164_format"),  # spaces
        ("+0812345678", "e164_format"),
        ("+8190123456789012", "e164_format"),  # 16 digits
        ("+81012345", "e164_invalid"),  # well-formed, but no such Japanese number
    ],
)
def test_invalid_e164_numbers_name_the_problem(number, code):
    with pytest.raises(ValidationError) as error:
        validate_e164(number)
    assert error.value.code == code
