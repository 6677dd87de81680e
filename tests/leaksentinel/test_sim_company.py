"""The demo company and its pastes: deterministic, valid-looking, and honest about leaks."""

from __future__ import annotations

import csv
import io
import re

import phonenumbers
import pytest

from leaksentinel.sim import Underground, company_csv, luhn_valid, make_demo_company, make_pastes
from leaksentinel.sim.company import luhn_check_digit


@pytest.fixture(scope="module")
def company():
    return make_demo_company()


def test_same_seed_same_company_and_pastes(company):
    assert make_demo_company() == company
    assert make_pastes(company) == make_pastes(make_demo_company())
    assert make_demo_company(seed=8) != company
    assert make_pastes(company, seed=8) != make_pastes(company)


def test_record_shape(company):
    assert company.name == "acme-bank"
    assert company.domain == "acme-bank.example"
    assert company.region == "CN"
    assert len(company.records) == 200
    keys = [r.record_key for r in company.records]
    assert len(set(keys)) == len(keys)
    assert len({r.email for r in company.records}) == 200
    assert len({r.phone for r in company.records}) == 200
    on_domain = [r for r in company.records if r.email.endswith("@acme-bank.example")]
    assert 100 < len(on_domain) < 200, "most emails are corporate, some are on free-mail look-alikes"
    for r in company.records:
        assert re.fullmatch(r"[a-z]+\.[a-z]+\d{1,2}@[a-z.-]+\.(example|test)", r.email), r.email
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", r.dob)
    assert any(r.name.isascii() for r in company.records)
    assert any(not r.name.isascii() for r in company.records), "Chinese names too"


def test_phones_are_valid_chinese_mobiles(company):
    for r in company.records:
        assert re.fullmatch(r"1(3\d|5[0-35-9]|8[6-9])\d{8}", r.phone), r.phone
        number = phonenumbers.parse(r.phone, "CN")
        assert phonenumbers.is_valid_number(number), r.phone
        assert phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE


def test_cards_are_luhn_valid_unionpay(company):
    cards = [r.card for r in company.records if r.card]
    assert 20 < len(cards) < 150
    for card in cards:
        assert re.fullmatch(r"62\d{14}", card)
        assert luhn_valid(card)
        assert not luhn_valid(card[:-1] + str((int(card[-1]) + 1) % 10))


def test_luhn_known_values():
    assert luhn_valid("4111 1111 1111 1111")
    assert luhn_check_digit("7992739871") == "3"
    assert not luhn_valid("1")


def test_company_csv(company):
    rows = list(csv.reader(io.StringIO(company_csv(company))))
    assert rows[0] == ["id", "email", "phone", "name", "dob"]
    assert len(rows) == 201
    first = company.records[0]
    assert rows[1] == [first.record_key, first.email, first.phone, first.name, first.dob]
    with_card = list(csv.reader(io.StringIO(company_csv(company, include_card=True))))
    assert with_card[0][-1] == "card"


def test_pastes_shape(company):
    pastes = make_pastes(company, n_noise=12)
    assert len(pastes) == 12 + 4
    assert len({p.key for p in pastes}) == len(pastes)
    for p in pastes:
        assert re.fullmatch(r"[A-Za-z0-9]{8}", p.key)
    dates = [p.date for p in pastes]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert sum(1 for p in pastes if not p.leaked_keys) == 12


def test_leaks_hold_what_they_claim(company):
    by_key = company.by_key()
    pastes = make_pastes(company)
    leaks = [p for p in pastes if p.leaked_keys]
    assert len(leaks) == 4
    for p in leaks:
        folded = p.text.casefold()
        digits = re.sub(r"\D", "", p.text)
        for key in p.leaked_keys:
            r = by_key[key]
            assert r.email in folded or r.phone in digits, (p.title, key)
    combo, repost = (p for p in leaks if "@" in p.text and ":" in p.text.splitlines()[1])
    assert combo.leaked_keys == repost.leaked_keys
    assert combo.text.splitlines()[0] != repost.text.splitlines()[0]
    assert combo.text.splitlines()[1:] == repost.text.splitlines()[1:]
    assert combo.date < repost.date
    assert combo.text != combo.text.lower(), "some emails are upper/mixed case"
    dump = next(p for p in leaks if p.text.startswith("序号,姓名,手机,邮箱"))
    assert "+86 " in dump.text and "0086-" in dump.text
    ad = next(p for p in leaks if "出售" in p.text)
    assert "姓名：" in ad.text and "电话：" in ad.text


def test_noise_leaks_nothing(company):
    emails = {r.email.casefold() for r in company.records}
    phones = {r.phone for r in company.records}
    for p in make_pastes(company, n_noise=24):
        if p.leaked_keys:
            continue
        assert "acme" not in p.text.casefold()
        assert not emails & {w.casefold() for w in re.findall(r"\S+@\S+", p.text)}
        assert not phones & set(re.findall(r"1\d{10}", p.text))


def test_underground_expected_keys():
    world = Underground(seed=7)
    expected = world.expected_leaked_keys()
    assert expected == {k for p in world.pastes for k in p.leaked_keys}
    assert 20 < len(expected) < 60
    assert expected <= {r.record_key for r in world.company.records}
