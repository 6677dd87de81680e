"""Deterministic pastes for the simulated paste site: leaks of the demo company plus noise.

The leaks are shaped like real dumps so detection is exercised the hard way: emails in
upper/mixed case, phones written in three notations, a CSV header partly in Chinese, a
Chinese sales advert, and a repost of the combo list with a different header (a near
duplicate). Noise pastes mention no company data, so every expected finding is known from
`SimPaste.leaked_keys`.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field

from leaksentinel.sim.company import (
    OTHER_EMAIL_DOMAINS,
    DemoCompany,
    DemoRecord,
    random_cn_mobile,
)

__all__ = ["BASE_TIME", "SimPaste", "make_pastes", "paste_key"]

# 2024-06-01T00:00:00Z: a fixed clock so the same seed gives byte-identical listings.
BASE_TIME = 1_717_200_000

_KEY_ALPHABET = string.ascii_letters + string.digits

_WORDS = (
    "alpha", "bravo", "sunset", "dragon", "tiger", "shadow", "monkey", "purple", "hunter",
    "ranger", "falcon", "maple", "ocean", "silver", "rocket", "pixel", "cobalt", "nova",
)  # fmt: skip
_LOREM = (
    "lorem", "ipsum", "dolor", "sit", "amet", "consectetur", "adipiscing", "elit", "sed", "do",
    "eiusmod", "tempor", "incididunt", "ut", "labore", "et", "dolore", "magna", "aliqua", "enim",
    "ad", "minim", "veniam", "quis", "nostrud", "exercitation", "ullamco", "laboris",
)  # fmt: skip
_CN_PROSE = (
    "今天天气很好，我们去公园散步。",
    "这个周末打算去图书馆看书，顺便复习一下考试内容。",
    "晚饭做了红烧肉和番茄炒蛋，味道还不错。",
    "最近在学习 Python 编程，感觉很有意思。",
    "地铁上人很多，下次要早点出门。",
    "朋友推荐了一部电影，评分很高，准备周五去看。",
    "春天到了，小区里的樱花都开了。",
)


@dataclass
class SimPaste:
    """One paste as the scraping API lists it; `leaked_keys` are the company records it holds."""

    key: str
    title: str
    user: str
    syntax: str
    date: int  # unix seconds
    text: str
    leaked_keys: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Size in bytes of the UTF-8 text, as Pastebin reports it."""
        return len(self.text.encode("utf-8"))


def paste_key(rng: random.Random) -> str:
    """An 8-character alphanumeric key like Pastebin's."""
    return "".join(rng.choice(_KEY_ALPHABET) for _ in range(8))


def _password(rng: random.Random) -> str:
    style = rng.randrange(4)
    if style == 0:
        return rng.choice(_WORDS) + str(rng.randint(1, 9999))
    if style == 1:
        return rng.choice(_WORDS).capitalize() + str(rng.randint(1990, 2024)) + rng.choice("!@#$")
    if style == 2:
        return "".join(rng.choice(_KEY_ALPHABET) for _ in range(rng.randint(8, 14)))
    return rng.choice(("123456", "qwerty", "password1", "iloveyou", "a123456", "111111"))


def _recase(email: str, rng: random.Random) -> str:
    """Upper or mixed case, as dumps merged from several sources often have."""
    local, _, domain = email.partition("@")
    if rng.random() < 0.5:
        return email.upper()
    return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain.capitalize()


def _format_phone(national: str, style: int) -> str:
    a, b, c = national[:3], national[3:7], national[7:]
    if style == 0:
        return f"+86 {a} {b} {c}"
    if style == 1:
        return f"0086-{a}-{b}-{c}"
    return national


class _Outsiders:
    """Emails and phones guaranteed not to belong to the company (no accidental matches)."""

    def __init__(self, company: DemoCompany, rng: random.Random) -> None:
        self._rng = rng
        self._emails = {r.email.casefold() for r in company.records}
        self._phones = {r.phone for r in company.records}

    def email(self) -> str:
        while True:
            handle = (
                self._rng.choice(_WORDS) + self._rng.choice(("_", ".", "")) + str(self._rng.randint(1, 999))
            )
            email = f"{handle}@{self._rng.choice(OTHER_EMAIL_DOMAINS)}"
            if email.casefold() not in self._emails:
                self._emails.add(email.casefold())
                return email

    def phone(self) -> str:
        while True:
            phone = random_cn_mobile(self._rng)
            if phone not in self._phones:
                self._phones.add(phone)
                return phone


def _combo_list(
    company: DemoCompany, rng: random.Random, out: _Outsiders
) -> tuple[str, str, list[DemoRecord]]:
    victims = rng.sample(company.records, min(30, len(company.records)))
    lines: list[tuple[str, str]] = [
        (_recase(r.email, rng) if rng.random() < 0.35 else r.email, _password(rng)) for r in victims
    ]
    lines += [(out.email(), _password(rng)) for _ in range(30)]
    rng.shuffle(lines)
    body = "\n".join(f"{e}:{p}" for e, p in lines)
    text = f"=== {company.name.upper()} COMBO | {len(lines)} lines | private cracked ===\n{body}\n"
    return text, body, victims


def _csv_dump(company: DemoCompany, rng: random.Random) -> tuple[str, list[DemoRecord]]:
    victims = rng.sample(company.records, min(20, len(company.records)))
    rows = ["序号,姓名,手机,邮箱,出生日期,card_no"]
    for i, r in enumerate(victims, 1):
        rows.append(f"{i},{r.name},{_format_phone(r.phone, i % 3)},{r.email},{r.dob},{r.card or ''}")
    return "\n".join(rows) + "\n", victims


def _chat_ad(company: DemoCompany, rng: random.Random) -> tuple[str, list[DemoRecord]]:
    chinese = [r for r in company.records if not r.name.isascii()] or company.records
    victims = rng.sample(chinese, min(4, len(chinese)))
    brand = company.name.split("-")[0]
    lines = [
        f"【出售】{brand} 银行客户数据 一手货源 {rng.randint(5, 30)}万条 实时更新 包售后",
        "样本如下，先验货后付款：",
    ]
    for r in victims:
        line = f"姓名：{r.name} 电话：{r.phone} 生日：{r.dob}"
        if r.card:
            line += f" 卡号：{r.card}"
        lines.append(line)
    lines.append(f"有意者私聊 TG: @{rng.choice(_WORDS)}_data{rng.randint(10, 99)}  非诚勿扰")
    return "\n".join(lines) + "\n", victims


def _noise_python(rng: random.Random, out: _Outsiders) -> tuple[str, str, str]:
    n = rng.randint(2, 9)
    text = (
        "import json\n\n\n"
        f"def chunks(items, size={n}):\n"
        '    """Yield successive chunks."""\n'
        "    for i in range(0, len(items), size):\n"
        "        yield items[i : i + size]\n\n\n"
        'if __name__ == "__main__":\n'
        f"    print(json.dumps(list(chunks(list(range({n * 4}))))))\n"
    )
    return "chunks helper", "python", text


def _noise_config(rng: random.Random, out: _Outsiders) -> tuple[str, str, str]:
    port = rng.choice((8080, 8443, 3000, 5000))
    text = (
        "server {\n"
        "    listen 80;\n"
        f"    server_name {rng.choice(_WORDS)}.example;\n"
        "    location / {\n"
        f"        proxy_pass http://127.0.0.1:{port};\n"
        "        proxy_set_header Host $host;\n"
        "    }\n"
        "}\n"
    )
    return "nginx.conf", "nginx", text


def _noise_yaml(rng: random.Random, out: _Outsiders) -> tuple[str, str, str]:
    text = (
        "version: '3.8'\nservices:\n"
        f"  {rng.choice(_WORDS)}:\n"
        "    image: postgres:16\n"
        "    environment:\n"
        "      POSTGRES_DB: app\n"
        "    ports:\n"
        "      - '5432:5432'\n"
    )
    return "docker-compose.yml", "yaml", text


def _noise_lorem(rng: random.Random, out: _Outsiders) -> tuple[str, str, str]:
    paragraphs = [
        " ".join(rng.choice(_LOREM) for _ in range(rng.randint(25, 45))).capitalize() + "." for _ in range(3)
    ]
    return "Untitled", "text", "\n\n".join(paragraphs) + "\n"


def _noise_cn_prose(rng: random.Random, out: _Outsiders) -> tuple[str, str, str]:
    text = "".join(rng.sample(_CN_PROSE, 4)) + "\n"
    return "随笔", "text", text


def _noise_emails(rng: random.Random, out: _Outsiders) -> tuple[str, str, str]:
    text = "newsletter signups\n" + "\n".join(out.email() for _ in range(rng.randint(5, 10))) + "\n"
    return "mailing list", "text", text


def _noise_phones(rng: random.Random, out: _Outsiders) -> tuple[str, str, str]:
    lines = ["外卖订单 联系电话"]
    for i in range(rng.randint(4, 8)):
        lines.append(f"{i + 1}. 订单{rng.randint(1000, 9999)} 电话 {out.phone()}")
    return "订单记录", "text", "\n".join(lines) + "\n"


def _noise_sql(rng: random.Random, out: _Outsiders) -> tuple[str, str, str]:
    table = rng.choice(_WORDS)
    text = (
        f"CREATE TABLE {table} (\n  id SERIAL PRIMARY KEY,\n  label TEXT NOT NULL,\n"
        "  created_at TIMESTAMP DEFAULT now()\n);\n"
        f"SELECT label, count(*) FROM {table} GROUP BY label ORDER BY 2 DESC;\n"
    )
    return "schema", "sql", text


_NOISE: tuple[Callable[[random.Random, _Outsiders], tuple[str, str, str]], ...] = (
    _noise_python,
    _noise_config,
    _noise_lorem,
    _noise_cn_prose,
    _noise_emails,
    _noise_phones,
    _noise_yaml,
    _noise_sql,
)


def make_pastes(
    company: DemoCompany, seed: int = 7, n_noise: int = 12, *, base_time: int = BASE_TIME
) -> list[SimPaste]:
    """The pastes of the simulated site, oldest first; the same arguments give the same pastes.

    Four leaks (combo list, CSV dump, Chinese advert, repost of the combo list) among
    `n_noise` benign pastes; dates increase from `base_time`.
    """
    rng = random.Random(seed)
    out = _Outsiders(company, rng)

    # (title, user, syntax, text, leaked records)
    drafts: list[tuple[str, str, str, str, list[str]]] = []
    combo_text, combo_body, combo_victims = _combo_list(company, rng, out)
    combo_keys = sorted(r.record_key for r in combo_victims)
    drafts.append((f"{company.name} combo fresh", "", "text", combo_text, combo_keys))
    csv_text, csv_victims = _csv_dump(company, rng)
    drafts.append(("客户资料 dump", "dbseller", "text", csv_text, sorted(r.record_key for r in csv_victims)))
    ad_text, ad_victims = _chat_ad(company, rng)
    drafts.append(("出售银行客户数据", "", "text", ad_text, sorted(r.record_key for r in ad_victims)))
    repost_text = f"## reup from a friend, {company.domain} combo, enjoy ##\n{combo_body}\n"
    repost = ("combo reup", "leaker99", "text", repost_text, combo_keys)

    for i in range(n_noise):
        title, syntax, text = _NOISE[i % len(_NOISE)](rng, out)
        drafts.append((title, rng.choice(("", "", "devnull", "coder42")), syntax, text, []))

    rng.shuffle(drafts)
    # The repost must come after the original, so it goes somewhere after the combo list.
    combo_at = next(i for i, d in enumerate(drafts) if d[3] == combo_text)
    drafts.insert(rng.randint(combo_at + 1, len(drafts)), repost)

    pastes: list[SimPaste] = []
    keys: set[str] = set()
    date = base_time
    for title, user, syntax, text, leaked in drafts:
        date += rng.randint(30, 600)
        key = paste_key(rng)
        while key in keys:
            key = paste_key(rng)
        keys.add(key)
        pastes.append(SimPaste(key, title, user, syntax, date, text, list(leaked)))
    return pastes
