"""A deterministic demo company whose customer records the simulated underground leaks.

The demo and the tests need a company whose data looks real enough to exercise every
detector (emails in several domains, Chinese mobiles, mixed-script names, UnionPay cards)
while being provably fake: every email domain is under a reserved TLD (RFC 2606/6761) and
the same seed always yields the same records, so expected matches can be computed.

    >>> company = make_demo_company(seed=7, n_records=5)
    >>> company.records[0].record_key
    'cust-00001'
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field

__all__ = [
    "OTHER_EMAIL_DOMAINS",
    "DemoCompany",
    "DemoRecord",
    "company_csv",
    "luhn_check_digit",
    "luhn_valid",
    "make_demo_company",
    "random_cn_mobile",
]

# Mobile prefixes (130-139, 150-159, 186-189) that libphonenumber accepts for every
# subscriber number; 154 is unassigned in China and therefore left out.
CN_MOBILE_PREFIXES: tuple[str, ...] = tuple(
    str(p) for p in [*range(130, 140), *range(150, 160), *range(186, 190)] if p != 154
)

# Free-mail look-alikes: reserved TLDs only, so nothing generated can reach a real inbox.
OTHER_EMAIL_DOMAINS: tuple[str, ...] = ("mailbox.example", "webmail.test", "inbox.example", "freemail.test")

LATIN_FIRST = (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
    "elizabeth", "william", "barbara", "richard", "susan", "joseph", "jessica", "thomas",
    "sarah", "daniel", "karen", "oliver", "emma", "lucas", "sophie", "noah", "mia",
)  # fmt: skip
LATIN_LAST = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "wilson",
    "anderson", "taylor", "thomas", "moore", "martin", "jackson", "white", "harris", "clark",
    "lewis", "walker", "young", "king", "wright", "scott",
)  # fmt: skip
# (hanzi, pinyin) pairs, so a Chinese name gets a plausible romanised email address.
CN_SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
    ("高", "gao"), ("罗", "luo"),
)  # fmt: skip
CN_GIVEN = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"),
    ("建华", "jianhua"), ("志强", "zhiqiang"), ("海燕", "haiyan"), ("晓明", "xiaoming"),
    ("雪梅", "xuemei"), ("国平", "guoping"), ("桂英", "guiying"), ("子轩", "zixuan"),
)  # fmt: skip


@dataclass
class DemoRecord:
    """One customer row; `record_key` is the opaque key the company registers with its hashes."""

    record_key: str
    email: str
    phone: str  # Chinese mobile, national form: 11 digits, e.g. 13800138000
    name: str
    dob: str  # ISO date
    card: str | None  # Luhn-valid UnionPay number, for some records


@dataclass
class DemoCompany:
    """The tenant the demo registers; `region` is the default country for bare national phones."""

    name: str
    domain: str
    region: str
    records: list[DemoRecord] = field(default_factory=list)

    def by_key(self) -> dict[str, DemoRecord]:
        """Records indexed by record key, for tests that check what a paste leaked."""
        return {r.record_key: r for r in self.records}


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial + digit` pass the Luhn check."""
    total = 0
    # Walking from the right, the digit next to the (future) check digit is doubled.
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True if the digits of `number` (separators ignored) pass the Luhn check."""
    digits = "".join(ch for ch in number if ch.isdigit())
    if len(digits) < 2:
        return False
    return luhn_check_digit(digits[:-1]) == digits[-1]


def random_cn_mobile(rng: random.Random) -> str:
    """A Chinese mobile number in national form that libphonenumber considers valid."""
    return rng.choice(CN_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def _unionpay_card(rng: random.Random) -> str:
    # 6212/6222/6228 are common UnionPay debit BIN families; 16 digits in all.
    partial = rng.choice(("6212", "6222", "6228")) + "".join(str(rng.randrange(10)) for _ in range(11))
    return partial + luhn_check_digit(partial)


def _dob(rng: random.Random) -> str:
    year = rng.randint(1955, 2003)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    return f"{year:04d}-{month:02d}-{day:02d}"


def make_demo_company(
    seed: int = 7,
    n_records: int = 200,
    name: str = "acme-bank",
    domain: str = "acme-bank.example",
    region: str = "CN",
) -> DemoCompany:
    """Build the demo company; the same arguments always give the same records."""
    rng = random.Random(seed)
    records: list[DemoRecord] = []
    emails: set[str] = set()
    phones: set[str] = set()
    for i in range(n_records):
        if rng.random() < 0.5:
            first, last = rng.choice(LATIN_FIRST), rng.choice(LATIN_LAST)
            display = f"{first.capitalize()} {last.capitalize()}"
        else:
            (sur_hz, last), (given_hz, first) = rng.choice(CN_SURNAMES), rng.choice(CN_GIVEN)
            display = sur_hz + given_hz
        mail_domain = domain if rng.random() < 0.75 else rng.choice(OTHER_EMAIL_DOMAINS)
        while True:
            email = f"{first}.{last}{rng.randint(1, 99)}@{mail_domain}"
            if email not in emails:
                break
        emails.add(email)
        while True:
            phone = random_cn_mobile(rng)
            if phone not in phones:
                break
        phones.add(phone)
        card = _unionpay_card(rng) if rng.random() < 0.3 else None
        records.append(
            DemoRecord(
                record_key=f"cust-{i + 1:05d}",
                email=email,
                phone=phone,
                name=display,
                dob=_dob(rng),
                card=card,
            )
        )
    return DemoCompany(name=name, domain=domain, region=region, records=records)


def company_csv(company: DemoCompany, *, include_card: bool = False) -> str:
    """The CSV the company feeds to `leaksentinel hash --key-column id`.

    The header names each column's field type (`id,email,phone,name,dob`); `include_card`
    adds a `card` column (empty where a record has no card).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["id", "email", "phone", "name", "dob"]
    if include_card:
        header.append("card")
    writer.writerow(header)
    for r in company.records:
        row = [r.record_key, r.email, r.phone, r.name, r.dob]
        if include_card:
            row.append(r.card or "")
        writer.writerow(row)
    return out.getvalue()
