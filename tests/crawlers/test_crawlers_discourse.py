"""The discourse spider against a loopback Discourse forum: latest pages, topics, posts.json for the
posts a topic's JSON leaves out, cooked HTML to text, and the per-topic cursor."""

from __future__ import annotations

from datetime import datetime

from api_fixtures import DiscourseForum
from sqlalchemy import select

from core.db import open_database
from core.models import Posting, Source
from core.settings import load_settings
from crawlers.job import run_crawl
from crawlers.spiders.discourse import _html_to_text, json_listing_url
from leaksentinel.actions.sources import add_source


def test_more_topics_url_becomes_json() -> None:
    assert json_listing_url("/latest?no_definitions=true&page=1") == "/latest.json?no_definitions=true&page=1"
    assert json_listing_url("/latest.json?page=2") == "/latest.json?page=2"
    assert json_listing_url("/forum/latest/?page=3") == "/forum/latest.json?page=3"


def test_cooked_html_to_text() -> None:
    cooked = "<p>Hello <b>world</b></p><script>evil()</script><ul><li>a</li><li>b</li></ul>line<br>break"
    assert _html_to_text(cooked) == "Hello world\na\nb\nline\nbreak"
    assert _html_to_text("") == ""


def _expected(forum: DiscourseForum, base: str) -> dict[str, dict[str, object]]:
    rows = {}
    for topic in forum.topics:
        for post in forum.posts[topic["id"]]:
            url = f"{base}/t/{topic['slug']}/{topic['id']}/{post['post_number']}"
            rows[url] = {"title": topic["title"], "author": post["username"], "published": post["created_at"]}
    return rows


def test_crawl_reads_every_post_then_only_the_new_reply() -> None:
    settings = load_settings()
    db = open_database(settings)
    with DiscourseForum() as forum:
        assert isinstance(forum, DiscourseForum)
        base = f"{forum.base_url}/forum"
        add_source(db, "disc", "discourse", base)
        expected = _expected(forum, base)
        first = run_crawl(settings, "disc")
        assert first["status"] == "ok" and first["errors"] == 0, first
        assert first["new"] == len(expected) == first["postings"]
        listings = [r for r in forum.requests if "/latest" in r]
        assert listings == ["/forum/latest.json", "/forum/latest.json?no_definitions=true&page=1"]
        assert any("/posts.json?post_ids" in r for r in forum.requests)  # a topic with 4 posts
        with db.session() as sess:
            stored = {p.url: p for p in sess.scalars(select(Posting))}
        assert set(stored) == set(expected)
        topic = forum.topics[0]
        first_post = forum.posts[topic["id"]][0]
        for url, row in expected.items():
            posting = stored[url]
            assert posting.title == row["title"] and posting.author == row["author"]
            assert posting.published is not None and posting.published.tzinfo is not None
            assert posting.published == datetime.fromisoformat(str(row["published"]).replace("Z", "+00:00"))
        text = stored[f"{base}/t/{topic['slug']}/{topic['id']}/1"].text
        assert text == f"Post 1 of {topic['title']}: contact admin00@acme.example\nrow one\nrow two"
        assert "alert(" not in text and first_post["cooked"].startswith("<p>")

        # Nothing changed: the listing only, no topic read, nothing stored.
        forum.requests.clear()
        second = run_crawl(settings, "disc")
        assert second["status"] == "ok" and second["new"] == 0 and second["postings"] == 0, second
        assert [r for r in forum.requests if r != "/robots.txt"] == ["/forum/latest.json"]

        # A reply to a topic on the second listing page: it is bumped, read, and only the reply is new.
        old = next(t for t in forum.topics if t["id"] == 10)
        reply = forum.add_reply(
            10, "newcomer", "<p>Here is the <a href='#'>new</a> dump: eve@acme.example</p>"
        )
        forum.requests.clear()
        third = run_crawl(settings, "disc")
        assert third["status"] == "ok" and third["new"] == 1 and third["errors"] == 0, third
        topic_reads = [r for r in forum.requests if "/t/" in r]
        assert topic_reads[0] == f"/forum/t/{old['slug']}/10.json"
        assert all("/10" in r or "/t/10/" in r for r in topic_reads)
        with db.session() as sess:
            newest = sess.scalar(select(Posting).order_by(Posting.id.desc()))
            source = sess.scalar(select(Source).where(Source.name == "disc"))
        assert newest is not None and source is not None
        assert newest.url == f"{base}/t/{old['slug']}/10/{reply['post_number']}"
        assert newest.author == "newcomer" and newest.text == "Here is the new dump: eve@acme.example"
        assert source.cursor["topics"]["10"]["n"] == reply["post_number"]
        assert source.cursor["topics"]["10"]["p"] == reply["id"]
        assert len(source.cursor["topics"]) == len(forum.topics)


def test_a_topic_that_failed_is_read_next_run_even_off_the_first_page() -> None:
    settings = load_settings()
    db = open_database(settings)
    with DiscourseForum() as forum:
        assert isinstance(forum, DiscourseForum)
        base = f"{forum.base_url}/forum"
        add_source(db, "disc", "discourse", base)
        oldest = forum.topics[0]  # least recently bumped: on the second listing page
        path = f"/forum/t/{oldest['slug']}/{oldest['id']}.json"
        forum.fail[path] = 403
        first = run_crawl(settings, "disc")
        assert first["status"] == "ok" and first["errors"] == 1, first
        assert first["new"] == sum(len(forum.posts[t["id"]]) for t in forum.topics[1:])
        del forum.fail[path]
        forum.requests.clear()
        second = run_crawl(settings, "disc")
        assert second["new"] == len(forum.posts[oldest["id"]]) and second["errors"] == 0, second
        assert [r for r in forum.requests if "/t/" in r] == [path]
        with db.session() as sess:
            source = sess.scalar(select(Source).where(Source.name == "disc"))
        assert source is not None and source.cursor["retry"] == {}
