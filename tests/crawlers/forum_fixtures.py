"""Loopback forums for the HTML spider tests: phpBB (prosilver), XenForo 2, a Telegram channel preview
(t.me/s/), and a plain site for the generic spider.

Each serves pages in the platform's real markup (class names, attributes, pagination links, session ids in
phpBB links), from a `LoopbackServer` (standard library, daemon thread, port 0), and logs every request path
so a test can tell which pages a crawl fetched. ``/robots.txt`` answers 404, as many forums do.

    with PhpbbSite() as site:
        add_source(db, "board", "phpbb", site.forum_url)
        ...; site.requests  # ["/robots.txt", "/forum/viewforum.php?f=2", ...]
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from leaksentinel.sim.server import LoopbackHandler, LoopbackServer

__all__ = [
    "CN_ID",
    "CN_PHONE",
    "Expected",
    "FixtureSite",
    "GenericSite",
    "PhpbbSite",
    "TelegramSite",
    "XenforoSite",
]

# A fake resident ID (valid GB 11643 check digit) and a fake mobile number, for the GBK page.
CN_ID = "11010519491231002X"
CN_PHONE = "13800138000"
T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Expected:
    """What a stored posting must look like."""

    url: str
    title: str | None
    author: str | None
    published: datetime | None
    text: str


@dataclass
class Page:
    status: int
    body: bytes
    content_type: str = "text/html; charset=UTF-8"


class FixtureSite(LoopbackServer):
    """A loopback HTTP site; subclasses answer ``route(path, query)``."""

    server_version = "FixtureForum/1.0"

    @property
    def base_url(self) -> str:
        """Known before the site is started too (port 0 until then): unit tests build pages from it."""
        return f"http://{self.host}:{self.port}"

    def handle_get(self, request: LoopbackHandler) -> None:
        page = self.dispatch(request.path)
        request.send_body(page.status, page.body, page.content_type)

    def dispatch(self, raw_path: str) -> Page:
        with self.lock:
            self.log_request(raw_path)
            parts = urlsplit(raw_path)
            if parts.path == "/robots.txt":
                return Page(404, b"Not Found", "text/plain; charset=UTF-8")
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            try:
                return self.route(parts.path, query)
            except KeyError:
                return Page(404, b"<html><body><h1>Not found</h1></body></html>")

    def route(self, path: str, query: dict[str, str]) -> Page:
        raise KeyError(path)

    def paths(self, needle: str) -> list[str]:
        """The logged request paths containing ``needle``."""
        with self.lock:
            return [p for p in self.requests if needle in p]


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def lines_html(lines: list[str]) -> str:
    return "<br />\n".join(esc(line) for line in lines)


# ---------------------------------------------------------------------------------------------------
# phpBB 3.3, prosilver
# ---------------------------------------------------------------------------------------------------


@dataclass
class BbPost:
    id: int
    author: str
    time: datetime
    html: str  # the inner HTML of div.content
    text: str  # what the posting's text must be


@dataclass
class BbTopic:
    id: int
    title: str
    posts: list[BbPost] = field(default_factory=list)
    charset: str = "UTF-8"

    @property
    def last_time(self) -> datetime:
        return self.posts[-1].time


class PhpbbSite(FixtureSite):
    """A phpBB board under ``/forum/``: forum 2 with four topics, two per listing page, three posts per
    topic page; topic 1 has two pages, topic 2 is served as GBK. Guests get a fresh ``sid`` in every link."""

    prefix = "/forum"
    forum_id = 2
    topics_per_page = 2
    posts_per_page = 3

    def __init__(self) -> None:
        super().__init__()
        self.next_post = 1
        self.topics: dict[int, BbTopic] = {}
        t = T0
        dump = self._topic(1, "Customer database dump (2024)")
        self._post(dump, "alice", t, ["Fresh dump of a shop, 10k rows.", "Sample below."])
        self._post(
            dump,
            "bob",
            t + timedelta(minutes=5),
            None,
            html_=(
                '<blockquote><div><cite>alice wrote: <a href="./viewtopic.php?p=1#p1" data-post-id="1">'
                "&#8593;</a></cite>Fresh dump</div></blockquote>Is it real?"
            ),
            text="alice wrote: ↑\nFresh dump\nIs it real?",
        )
        self._post(
            dump,
            "alice",
            t + timedelta(minutes=9),
            None,
            html_=(
                '<div class="codebox"><p>Code: <a href="#" onclick="selectCode(this); return false;">'
                "Select all</a></p><pre><code>id;email;phone\n1;jane.doe@example.com;+1 202 555 0147"
                "</code></pre></div><script>track()</script>"
            ),
            text="Code: Select all\nid;email;phone\n1;jane.doe@example.com;+1 202 555 0147",
        )
        self._post(dump, "carol", t + timedelta(minutes=20), ["Checked 20 rows, they look valid."])
        self._post(dump, "bob", t + timedelta(minutes=31), ["Thanks, <b>mirrored</b> it."])
        chinese = self._topic(2, "内部员工信息泄露", charset="GBK")
        self._post(
            chinese,
            "李雷",
            t + timedelta(minutes=40),
            ["员工资料如下：", f"姓名：张伟 身份证号：{CN_ID} 手机：{CN_PHONE}", "地址：北京市朝阳区"],
        )
        self._post(chinese, "韩梅梅", t + timedelta(minutes=45), ["收到，谢谢分享！"])
        access = self._topic(3, "Selling VPN access")
        self._post(access, "mallory", t - timedelta(days=1), ["Corporate VPN creds, DM me."])
        combo = self._topic(4, "Combo list 5k")
        self._post(
            combo, "eve", t - timedelta(days=2), ["user1@example.org:hunter2", "user2@example.org:pass"]
        )
        self._post(combo, "trent", t - timedelta(days=2, hours=-1), ["dead link"])

    # -- content -------------------------------------------------------------------------------
    def _topic(self, topic_id: int, title: str, charset: str = "UTF-8") -> BbTopic:
        topic = BbTopic(topic_id, title, charset=charset)
        self.topics[topic_id] = topic
        return topic

    def _post(
        self,
        topic: BbTopic,
        author: str,
        when: datetime,
        lines: list[str] | None,
        html_: str | None = None,
        text: str | None = None,
    ) -> BbPost:
        if lines is not None:
            html_ = lines_html(lines).replace("&lt;b&gt;", "<strong>").replace("&lt;/b&gt;", "</strong>")
            text = "\n".join(line.replace("<b>", "").replace("</b>", "") for line in lines)
        post = BbPost(self.next_post, author, when, html_ or "", text or "")
        self.next_post += 1
        topic.posts.append(post)
        return post

    def add_reply(self, topic_id: int, author: str, lines: list[str]) -> BbPost:
        with self.lock:
            topic = self.topics[topic_id]
            latest = max(t.last_time for t in self.topics.values())
            return self._post(topic, author, latest + timedelta(minutes=1), lines)

    def delete_posts(self, topic_id: int, keep: int) -> None:
        """A moderator prunes a topic to its first ``keep`` posts (its later pages disappear)."""
        with self.lock:
            del self.topics[topic_id].posts[keep:]

    @property
    def forum_url(self) -> str:
        return f"{self.base_url}{self.prefix}/viewforum.php?f={self.forum_id}"

    def topic_page_url(self, topic: BbTopic, index: int) -> str:
        start = (index // self.posts_per_page) * self.posts_per_page
        extra = f"&start={start}" if start else ""
        return f"{self.base_url}{self.prefix}/viewtopic.php?t={topic.id}{extra}"

    def expected(self) -> dict[str, Expected]:
        out: dict[str, Expected] = {}
        for topic in self.topics.values():
            for i, post in enumerate(topic.posts):
                url = f"{self.topic_page_url(topic, i)}#p{post.id}"
                out[url] = Expected(url, topic.title, post.author, post.time, post.text)
        return out

    # -- pages ---------------------------------------------------------------------------------
    def route(self, path: str, query: dict[str, str]) -> Page:
        if path == f"{self.prefix}/viewforum.php" and query.get("f") == str(self.forum_id):
            return self._viewforum(int(query.get("start", "0") or 0))
        if path == f"{self.prefix}/viewtopic.php" and "t" in query:
            topic = self.topics[int(query["t"])]
            return self._viewtopic(topic, int(query.get("start", "0") or 0))
        raise KeyError(path)

    def _sid(self) -> str:
        return f"&amp;sid={secrets.token_hex(16)}"

    @staticmethod
    def _when(t: datetime) -> str:
        return f'<time datetime="{t.isoformat()}">{t.strftime("%a %b %d, %Y %I:%M %p")}</time>'

    def _pagination(self, base: str, start: int, per_page: int, total: int, label: str) -> str:
        pages = max(1, -(-total // per_page))
        current = start // per_page
        items = []
        if current > 0:
            prev = base + (f"&amp;start={(current - 1) * per_page}" if current > 1 else "")
            items.append(
                f'<li class="arrow previous"><a class="button button-icon-only" href="{prev}{self._sid()}" '
                'rel="prev" role="button"><i class="icon fa-chevron-left fa-fw" aria-hidden="true"></i>'
                '<span class="sr-only">Previous</span></a></li>'
            )
        for n in range(pages):
            href = base + (f"&amp;start={n * per_page}" if n else "")
            if n == current:
                items.append(f'<li class="active"><span>{n + 1}</span></li>')
            else:
                items.append(
                    f'<li><a class="button" href="{href}{self._sid()}" role="button">{n + 1}</a></li>'
                )
        if current < pages - 1:
            nxt = f"{base}&amp;start={(current + 1) * per_page}"
            items.append(
                f'<li class="arrow next"><a class="button button-icon-only" href="{nxt}{self._sid()}" '
                'rel="next" role="button"><i class="icon fa-chevron-right fa-fw" aria-hidden="true"></i>'
                '<span class="sr-only">Next</span></a></li>'
            )
        return f'<div class="pagination">{total} {label}<ul>{"".join(items)}</ul></div>'

    def _document(self, title: str, body: str, charset: str = "UTF-8", section: str = "viewforum") -> Page:
        meta = '<meta charset="gbk" />' if charset == "GBK" else '<meta charset="utf-8" />'
        doc = (
            f'<!DOCTYPE html>\n<html dir="ltr" lang="en-gb">\n<head>\n{meta}\n'
            '<meta http-equiv="X-UA-Compatible" content="IE=edge">\n'
            f"<title>{esc(title)} - Example Board</title>\n"
            '<link href="./styles/prosilver/theme/stylesheet.css?assets_version=7" rel="stylesheet">\n'
            "<style>.hidden{display:none}</style>\n</head>\n"
            f'<body id="phpbb" class="nojs notouch section-{section} ltr ">\n'
            '<div id="wrap" class="wrap">\n<a id="top" class="top-anchor" accesskey="t"></a>\n'
            '<div id="page-header"><div class="headerbar" role="banner"><div class="inner">'
            '<div id="site-description" class="site-description"><h1>Example Board</h1></div>'
            "</div></div></div>\n"
            '<div id="page-body" class="page-body" role="main">\n'
            f"{body}\n</div>\n"
            '<div id="page-footer" class="page-footer" role="contentinfo">Powered by '
            '<a href="https://www.phpbb.com/">phpBB</a>&reg; Forum Software &copy; phpBB Limited</div>\n'
            "</div>\n<script>var x = 'not text';</script>\n</body>\n</html>\n"
        )
        encoding = "gbk" if charset == "GBK" else "utf-8"
        return Page(200, doc.encode(encoding), f"text/html; charset={charset}")

    def _viewforum(self, start: int) -> Page:
        ordered = sorted(self.topics.values(), key=lambda t: t.last_time, reverse=True)
        shown = ordered[start : start + self.topics_per_page]
        if start and not shown:
            raise KeyError("start")
        base = f"./viewforum.php?f={self.forum_id}"
        rows = []
        for i, topic in enumerate(shown):
            first, last = topic.posts[0], topic.posts[-1]
            mini = ""
            if len(topic.posts) > self.posts_per_page:
                mini = (
                    '<div class="pagination"><i class="icon fa-clone fa-fw" aria-hidden="true"></i><ul>'
                    f'<li><a class="button" href="./viewtopic.php?t={topic.id}{self._sid()}">1</a></li>'
                    f'<li><a class="button" href="./viewtopic.php?t={topic.id}&amp;start='
                    f'{self.posts_per_page}{self._sid()}">2</a></li></ul></div>'
                )
            rows.append(
                f'<li class="row bg{1 + i % 2}">\n<dl class="row-item topic_read">\n'
                '<dt title="No unread posts"><div class="list-inner">\n'
                f'<a href="./viewtopic.php?t={topic.id}{self._sid()}" class="topictitle">{esc(topic.title)}</a>\n'
                '<br /><div class="responsive-show" style="display: none;">Last post by '
                f'<a href="./memberlist.php?mode=viewprofile&amp;u=9{self._sid()}" class="username">'
                f"{esc(last.author)}</a></div>\n"
                '<div class="topic-poster responsive-hide left-box">by '
                f'<a href="./memberlist.php?mode=viewprofile&amp;u=7{self._sid()}" class="username">'
                f"{esc(first.author)}</a> &raquo; {self._when(first.time)}</div>\n{mini}\n"
                "</div></dt>\n"
                f'<dd class="posts">{len(topic.posts) - 1} <dfn>Replies</dfn></dd>\n'
                f'<dd class="views">{40 + 7 * topic.id} <dfn>Views</dfn></dd>\n'
                '<dd class="lastpost"><span><dfn>Last post </dfn>by '
                f'<a href="./memberlist.php?mode=viewprofile&amp;u=9{self._sid()}" class="username">'
                f"{esc(last.author)}</a>\n"
                f'<a href="./viewtopic.php?p={last.id}{self._sid()}#p{last.id}" title="Go to last post">'
                '<i class="icon fa-external-link-square fa-fw icon-lightgray icon-md" aria-hidden="true">'
                '</i><span class="sr-only"></span></a>'
                f"<br />{self._when(last.time)}</span></dd>\n</dl>\n</li>"
            )
        pagination = self._pagination(base, start, self.topics_per_page, len(ordered), "topics")
        body = (
            f'<h2 class="forum-title"><a href="{base}{self._sid()}">Leaks</a></h2>\n'
            '<div class="action-bar bar-top">'
            f'<a href="./posting.php?mode=post&amp;f={self.forum_id}" class="button" title="Post a new topic">'
            f"<span>New Topic</span></a>{pagination}</div>\n"
            '<div class="forumbg"><div class="inner">\n<ul class="topiclist">\n<li class="header">'
            '<dl class="row-item"><dt><div class="list-inner">Topics</div></dt><dd class="posts">Replies</dd>'
            '<dd class="views">Views</dd><dd class="lastpost"><span>Last post</span></dd></dl></li>\n</ul>\n'
            f'<ul class="topiclist topics">\n{"".join(rows)}\n</ul>\n</div></div>\n'
            f'<div class="action-bar bar-bottom">{pagination}</div>'
        )
        return self._document("Leaks", body)

    def _viewtopic(self, topic: BbTopic, start: int) -> Page:
        shown = topic.posts[start : start + self.posts_per_page]
        if not shown:
            raise KeyError("start")
        base = f"./viewtopic.php?t={topic.id}"
        pagination = self._pagination(base, start, self.posts_per_page, len(topic.posts), "posts")
        posts = []
        for i, post in enumerate(shown):
            first = ' class="first"' if start + i == 0 else ""
            subject = topic.title if start + i == 0 else f"Re: {topic.title}"
            profile = (
                f'<a href="./memberlist.php?mode=viewprofile&amp;u=1{post.id}{self._sid()}" class="username">'
            )
            posts.append(
                f'<div id="p{post.id}" class="post has-profile bg{2 - i % 2}">\n<div class="inner">\n'
                f'<dl class="postprofile" id="profile{post.id}">\n'
                f'<dt class="has-profile-rank no-avatar"><div class="avatar-container"></div>{profile}'
                f"{esc(post.author)}</a></dt>\n"
                '<dd class="profile-rank">Member</dd>\n'
                '<dd class="profile-posts"><strong>Posts:</strong> <a href="./search.php?author_id=7">12</a></dd>\n'
                '<dd class="profile-joined"><strong>Joined:</strong> Tue Jan 02, 2024 9:00 am</dd>\n</dl>\n'
                f'<div class="postbody">\n<div id="post_content{post.id}">\n'
                f'<h3{first}><a href="./viewtopic.php?p={post.id}{self._sid()}#p{post.id}">{esc(subject)}</a></h3>\n'
                '<ul class="post-buttons"><li><a href="./posting.php?mode=quote&amp;p='
                f'{post.id}" title="Reply with quote" class="button button-icon-only">'
                '<i class="icon fa-quote-left fa-fw" aria-hidden="true"></i><span>Quote</span></a></li></ul>\n'
                f'<p class="author"><a class="unread" href="./viewtopic.php?p={post.id}{self._sid()}#p{post.id}" '
                'title="Post"><i class="icon fa-file fa-fw icon-lightgray icon-md" aria-hidden="true"></i>'
                '<span class="sr-only">Post</span></a><span class="responsive-hide">by <strong>'
                f"{profile}{esc(post.author)}</a></strong> &raquo; </span>{self._when(post.time)} </p>\n"
                f'<div class="content">{post.html}</div>\n'
                f'<div id="sig{post.id}" class="signature">-- {esc(post.author)} signs here</div>\n'
                "</div>\n</div>\n"
                '<div class="back2top"><a href="#top" class="top" title="Top">'
                '<i class="icon fa-chevron-circle-up fa-fw icon-gray" aria-hidden="true"></i>'
                '<span class="sr-only">Top</span></a></div>\n'
                '</div>\n</div>\n<hr class="divider" />'
            )
        body = (
            f'<h2 class="topic-title"><a href="{base}{self._sid()}">{esc(topic.title)}</a></h2>\n'
            '<div class="action-bar bar-top">'
            f'<a href="./posting.php?mode=reply&amp;t={topic.id}" class="button" title="Post a reply">'
            f"<span>Post Reply</span></a>{pagination}</div>\n"
            + "\n".join(posts)
            + f'\n<div class="action-bar bar-bottom">{pagination}</div>'
        )
        return self._document(topic.title, body, topic.charset, "viewtopic")


# ---------------------------------------------------------------------------------------------------
# XenForo 2.2
# ---------------------------------------------------------------------------------------------------


@dataclass
class XfThread:
    id: int
    slug: str
    title: str
    prefix: str | None = None
    sticky: bool = False
    posts: list[BbPost] = field(default_factory=list)

    @property
    def last_time(self) -> datetime:
        return self.posts[-1].time


class XenforoSite(FixtureSite):
    """A XenForo 2 board under ``/community/``: forum ``leaks.5`` with a sticky thread and three more, two
    threads per listing page, three posts per thread page; thread 11 has two pages, thread 12 a prefix."""

    prefix = "/community"
    threads_per_page = 2
    posts_per_page = 3

    def __init__(self) -> None:
        super().__init__()
        self.next_post = 101
        self.threads: dict[int, XfThread] = {}
        t = T0
        rules = self._new_thread(10, "forum-rules", "Forum rules", sticky=True)
        self._post(rules, "admin", t - timedelta(days=30), ["No spam.", "No scams."])
        big = self._new_thread(11, "fresh-combo-list-2024", "Fresh combo list 2024")
        self._post(big, "alice", t, ["5k lines, mail:pass", "alice.smith@example.com:Winter2024!"])
        self._post(big, "bob", t + timedelta(minutes=3), ["Works, thanks."])
        self._post(
            big,
            "carol",
            t + timedelta(minutes=7),
            None,
            html_=(
                '<blockquote data-attributes="member: 3" data-quote="alice" data-source="post: 101" '
                'class="bbCodeBlock bbCodeBlock--expandable bbCodeBlock--quote js-expandWatch">'
                '<div class="bbCodeBlock-title"><a href="/community/goto/post?id=101" '
                'class="bbCodeBlock-sourceJump" rel="nofollow" data-xf-click="attribution" '
                'data-content-selector="#post-101">alice said:</a></div>'
                '<div class="bbCodeBlock-content"><div class="bbCodeBlock-expandContent js-expandContent ">'
                "5k lines, mail:pass</div></div></blockquote>Half of them are dead."
            ),
            text="alice said:\n5k lines, mail:pass\nHalf of them are dead.",
        )
        self._post(big, "dave", t + timedelta(minutes=12), ["Mirror: see PM"])
        self._post(big, "alice", t + timedelta(minutes=15), ["Updated the list."])
        db = self._new_thread(12, "shop-db-leak", "Shop DB with 40k customers", prefix="Database")
        self._post(db, "mallory", t + timedelta(minutes=20), ["Shop dump, phone +44 20 7946 0958 inside."])
        self._post(db, "eve", t + timedelta(minutes=22), ["Price?"])
        old = self._new_thread(13, "old-vpn-logs", "Old VPN logs")
        self._post(old, "trent", t - timedelta(days=3), ["vpn.example.net 10.1.2.3 admin"])

    def _new_thread(
        self, tid: int, slug: str, title: str, prefix: str | None = None, sticky: bool = False
    ) -> XfThread:
        thread = XfThread(tid, slug, title, prefix, sticky)
        self.threads[tid] = thread
        return thread

    def _post(
        self,
        thread: XfThread,
        author: str,
        when: datetime,
        lines: list[str] | None,
        html_: str | None = None,
        text: str | None = None,
    ) -> BbPost:
        if lines is not None:
            html_, text = lines_html(lines), "\n".join(lines)
        post = BbPost(self.next_post, author, when, html_ or "", text or "")
        self.next_post += 1
        thread.posts.append(post)
        return post

    def add_reply(self, thread_id: int, author: str, lines: list[str]) -> BbPost:
        with self.lock:
            latest = max(t.last_time for t in self.threads.values())
            return self._post(self.threads[thread_id], author, latest + timedelta(minutes=1), lines)

    @property
    def forum_url(self) -> str:
        return f"{self.base_url}{self.prefix}/forums/leaks.5/"

    def thread_path(self, thread: XfThread, page: int = 1) -> str:
        base = f"{self.prefix}/threads/{thread.slug}.{thread.id}/"
        return base if page <= 1 else f"{base}page-{page}"

    def expected(self) -> dict[str, Expected]:
        out: dict[str, Expected] = {}
        for thread in self.threads.values():
            for i, post in enumerate(thread.posts):
                page = i // self.posts_per_page + 1
                url = f"{self.base_url}{self.thread_path(thread, page)}#post-{post.id}"
                out[url] = Expected(url, thread.title, post.author, post.time, post.text)
        return out

    # -- pages ---------------------------------------------------------------------------------
    def route(self, path: str, query: dict[str, str]) -> Page:
        forum = f"{self.prefix}/forums/leaks.5/"
        if path == forum or path.startswith(forum + "page-"):
            page = int(path.rsplit("page-", 1)[1]) if "page-" in path else 1
            return self._forum(page)
        if path.startswith(f"{self.prefix}/threads/"):
            rest = path[len(f"{self.prefix}/threads/") :]
            ident, _, tail = rest.partition("/")
            thread = self.threads[int(ident.rsplit(".", 1)[1])]
            page = int(tail[5:]) if tail.startswith("page-") else 1
            return self._thread_page(thread, page)
        raise KeyError(path)

    @staticmethod
    def _time(t: datetime, cls: str = "u-dt") -> str:
        return (
            f'<time class="{cls}" dir="auto" datetime="{t.strftime("%Y-%m-%dT%H:%M:%S%z")}" '
            f'data-time="{int(t.timestamp())}" data-date-string="{t.strftime("%b %d, %Y")}" '
            f'data-time-string="{t.strftime("%I:%M %p")}" title="{t.strftime("%b %d, %Y at %I:%M %p")}">'
            f"{t.strftime('%b %d, %Y')}</time>"
        )

    def _page_nav(self, base: str, page: int, pages: int) -> str:
        if pages <= 1:
            return ""
        items = []
        for n in range(1, pages + 1):
            href = base if n == 1 else f"{base}page-{n}"
            current = " pageNav-page--current" if n == page else ""
            items.append(f'<li class="pageNav-page{current}"><a href="{href}">{n}</a></li>')
        prev = (
            f'<a href="{base if page == 2 else f"{base}page-{page - 1}"}" class="pageNav-jump pageNav-jump--prev">Prev</a>'
            if page > 1
            else ""
        )
        nxt = (
            f'<a href="{base}page-{page + 1}" class="pageNav-jump pageNav-jump--next">Next</a>'
            if page < pages
            else ""
        )
        return (
            '<div class="block-outer"><div class="block-outer-main"><nav class="pageNavWrapper '
            'pageNavWrapper--mixed "><div class="pageNav  ">'
            f'{prev}<ul class="pageNav-main">{"".join(items)}</ul>{nxt}</div>'
            '<div class="pageNavSimple"></div></nav></div></div>'
        )

    def _document(self, title: str, heading: str, body: str) -> Page:
        doc = (
            '<!DOCTYPE html>\n<html id="XF" lang="en-US" dir="LTR" data-app="public" data-template="forum_view" '
            'data-container-key="node-5" data-logged-in="false" class="has-no-js template-forum_view">\n'
            '<head>\n<meta charset="utf-8" />\n'
            f"<title>{esc(title)} | Example Community</title>\n"
            '<link rel="stylesheet" href="/community/css.php?css=public%3Anormalize.css&amp;s=1&amp;l=1" />\n'
            "<script>window.XF = {}; document.documentElement.className += ' has-js';</script>\n</head>\n"
            '<body data-template="forum_view">\n<div class="p-pageWrapper" id="top">\n'
            '<header class="p-header" id="header"><div class="p-header-inner"><div class="p-header-content">'
            '<div class="p-header-logo p-header-logo--image"><a href="/community/">Example Community</a></div>'
            "</div></div></header>\n"
            '<div class="p-body"><div class="p-body-inner">\n'
            f'<div class="p-body-header"><div class="p-title "><h1 class="p-title-value">{heading}</h1></div></div>\n'
            f'<div class="p-body-main"><div class="p-body-content"><div class="p-body-pageContent">\n{body}\n'
            "</div></div></div>\n</div></div>\n"
            '<footer class="p-footer" id="footer"><div class="p-footer-inner">'
            '<div class="p-footer-copyright">Community platform by XenForo&reg; '
            '<span class="copyright">&copy; 2010-2024 XenForo Ltd.</span></div></div></footer>\n'
            "</div>\n</body>\n</html>\n"
        )
        return Page(200, doc.encode("utf-8"))

    def _row(self, thread: XfThread) -> str:
        first, last = thread.posts[0], thread.posts[-1]
        url = self.thread_path(thread)
        label = (
            f'<a href="{self.prefix}/forums/leaks.5/?prefix_id=2" class="labelLink" rel="nofollow">'
            f'<span class="label label--red" dir="auto">{esc(thread.prefix)}</span></a>'
            if thread.prefix
            else ""
        )
        pages = -(-len(thread.posts) // self.posts_per_page)
        jump = (
            '<span class="structItem-pageJump">'
            + "".join(f'<a href="{self.thread_path(thread, n)}">{n}</a>' for n in range(1, pages + 1))
            + "</span>"
            if pages > 1
            else ""
        )
        return (
            f'<div class="structItem structItem--thread js-inlineModContainer js-threadListItem-{thread.id}" '
            f'data-author="{esc(first.author)}">\n'
            '<div class="structItem-cell structItem-cell--icon"><div class="structItem-iconContainer">'
            f'<a href="{self.prefix}/members/{esc(first.author)}.7/" class="avatar avatar--s" '
            f'data-user-id="7" data-xf-init="member-tooltip"><span class="avatar-u7-s" role="img" '
            f'aria-label="{esc(first.author)}">{esc(first.author[:1].upper())}</span></a></div></div>\n'
            '<div class="structItem-cell structItem-cell--main" data-xf-init="touch-proxy">\n'
            + (
                '<ul class="structItem-statuses"><li><i class="structItem-status structItem-status--sticky" '
                'aria-hidden="true" title="Sticky"></i><span class="u-srOnly">Sticky</span></li></ul>'
                if thread.sticky
                else ""
            )
            + f'<div class="structItem-title">{label}<a href="{url}" class="" data-tp-primary="on" '
            f'data-xf-init="preview-tooltip" data-preview-url="{url}preview">{esc(thread.title)}</a></div>\n'
            '<div class="structItem-minor"><ul class="structItem-parts">'
            f'<li><a href="{self.prefix}/members/{esc(first.author)}.7/" class="username " dir="auto" '
            f'data-user-id="7" data-xf-init="member-tooltip">{esc(first.author)}</a></li>'
            f'<li class="structItem-startDate"><a href="{url}" rel="nofollow">{self._time(first.time)}</a></li>'
            f"</ul>{jump}</div>\n</div>\n"
            '<div class="structItem-cell structItem-cell--meta" title="First message reaction score: 0">'
            f'<dl class="pairs pairs--justified"><dt>Replies</dt><dd>{len(thread.posts) - 1}</dd></dl>'
            f'<dl class="pairs pairs--justified structItem-minor"><dt>Views</dt><dd>{secrets.randbelow(900) + 100}'
            "</dd></dl></div>\n"
            '<div class="structItem-cell structItem-cell--latest">'
            f'<a href="{self.prefix}/threads/{thread.slug}.{thread.id}/post-{last.id}" rel="nofollow">'
            f"{self._time(last.time, 'structItem-latestDate u-dt')}</a>"
            f'<div class="structItem-minor"><a href="{self.prefix}/members/{esc(last.author)}.9/" '
            f'class="username " dir="auto" data-user-id="9" data-xf-init="member-tooltip">{esc(last.author)}'
            "</a></div></div>\n"
            '<div class="structItem-cell structItem-cell--icon structItem-cell--iconEnd">'
            '<div class="structItem-iconContainer"></div></div>\n</div>'
        )

    def _forum(self, page: int) -> Page:
        sticky = [t for t in self.threads.values() if t.sticky]
        normal = sorted(
            (t for t in self.threads.values() if not t.sticky), key=lambda t: t.last_time, reverse=True
        )
        pages = max(1, -(-len(normal) // self.threads_per_page))
        if page > pages:
            raise KeyError("page")
        shown = normal[(page - 1) * self.threads_per_page : page * self.threads_per_page]
        nav = self._page_nav(f"{self.prefix}/forums/leaks.5/", page, pages)
        sticky_html = (
            '<div class="structItemContainer-group structItemContainer-group--sticky">'
            + "".join(self._row(t) for t in sticky)
            + "</div>"
            if page == 1 and sticky
            else ""
        )
        body = (
            f"{nav}\n"
            '<div class="block block--messages" data-xf-init="" data-type="thread" data-href="/community/inline-mod/">'
            '<div class="block-container"><div class="block-body">'
            f'<div class="structItemContainer">{sticky_html}'
            '<div class="structItemContainer-group js-threadList">'
            + "".join(self._row(t) for t in shown)
            + "</div></div></div></div></div>\n"
            + nav
        )
        return self._document("Leaks", "Leaks", body)

    def _thread_page(self, thread: XfThread, page: int) -> Page:
        pages = max(1, -(-len(thread.posts) // self.posts_per_page))
        if page > pages:
            raise KeyError("page")
        shown = thread.posts[(page - 1) * self.posts_per_page : page * self.posts_per_page]
        nav = self._page_nav(self.thread_path(thread), page, pages)
        articles = []
        for post in shown:
            post_url = f"{self.prefix}/threads/{thread.slug}.{thread.id}/post-{post.id}"
            articles.append(
                f'<article class="message message--post js-post js-inlineModContainer  " '
                f'data-author="{esc(post.author)}" data-content="post-{post.id}" id="js-post-{post.id}" '
                f'itemscope="" itemtype="https://schema.org/Comment" itemid="{post_url}">\n'
                f'<meta itemprop="parentItem" itemscope="" itemid="{self.thread_path(thread)}" />\n'
                f'<span class="u-anchorTarget" id="post-{post.id}"></span>\n'
                '<div class="message-inner">\n<div class="message-cell message-cell--user">'
                '<section class="message-user" itemprop="author" itemscope="" itemtype="https://schema.org/Person">'
                f'<div class="message-userDetails"><h4 class="message-name"><a href="{self.prefix}/members/'
                f'{esc(post.author)}.7/" class="username " dir="auto" data-user-id="7" itemprop="name">'
                f"{esc(post.author)}</a></h4>"
                '<h5 class="userTitle message-userTitle" dir="auto" itemprop="jobTitle">Member</h5></div>'
                "</section></div>\n"
                '<div class="message-cell message-cell--main"><div class="message-main js-quickEditTarget">\n'
                '<header class="message-attribution message-attribution--split">'
                '<ul class="message-attribution-main listInline "><li class="u-concealed">'
                f'<a href="{post_url}" rel="nofollow" itemprop="url">{self._time(post.time)}</a></li></ul>'
                '<ul class="message-attribution-opposite message-attribution-opposite--list ">'
                f'<li><a href="{post_url}" class="message-attribution-gadget" rel="nofollow">'
                '<i class="fa--xf far fa-share-alt" aria-hidden="true"></i></a></li>'
                f'<li><a href="{post_url}" rel="nofollow">#{thread.posts.index(post) + 1}</a></li></ul>'
                "</header>\n"
                '<div class="message-content js-messageContent">'
                f'<div class="message-userContent lbContainer js-lbContainer " data-lb-id="post-{post.id}">'
                '<article class="message-body js-selectToQuote"><div itemprop="text">'
                f'<div class="bbWrapper">{post.html}</div></div>'
                '<div class="js-selectToQuoteEnd">&nbsp;</div></article></div>'
                f'<div class="message-lastEdit">Last edited: {self._time(post.time + timedelta(days=9))}</div>'
                '<aside class="message-signature"><div class="bbWrapper">My signature, not the post</div>'
                "</aside></div>\n"
                '<footer class="message-footer"><div class="message-actionBar actionBar">'
                '<div class="actionBar-set actionBar-set--external">'
                f'<a href="{self.prefix}/threads/{thread.slug}.{thread.id}/reply?quote={post.id}" '
                'class="actionBar-action actionBar-action--reply" rel="nofollow">Reply</a></div></div>'
                '<div class="reactionsBar js-reactionsList "></div></footer>\n'
                "</div></div>\n</div>\n</article>"
            )
        heading = (
            (
                f'<a href="{self.prefix}/forums/leaks.5/?prefix_id=2" class="labelLink" rel="nofollow">'
                f'<span class="label label--red" dir="auto">{esc(thread.prefix)}</span></a>'
                '<span class="label-append">&nbsp;</span>'
            )
            if thread.prefix
            else ""
        ) + esc(thread.title)
        body = (
            f"{nav}\n"
            '<div class="block block--messages" data-xf-init="" data-type="post" data-href="/community/inline-mod/">'
            '<div class="block-container lbContainer"><div class="block-body js-replyNewMessageContainer">\n'
            + "\n".join(articles)
            + "\n</div></div></div>\n"
            + nav
        )
        return self._document(thread.title, heading, body)


# ---------------------------------------------------------------------------------------------------
# Telegram channel web preview (t.me/s/CHANNEL)
# ---------------------------------------------------------------------------------------------------


@dataclass
class TgMessage:
    id: int
    time: datetime
    html: str  # inner HTML of the message text ("" for a photo without caption)
    text: str
    reply_to: int | None = None
    forwarded_from: str | None = None


class TelegramSite(FixtureSite):
    """A channel preview at ``/s/leakchan``, five messages per page, newest last; older pages by
    ``?before=ID``. The first page links the older page both ways (``link[rel=prev]`` and the "more"
    anchor); older pages only through the anchor, as a check that both are understood."""

    channel = "leakchan"
    title = "Leak Channel"
    per_page = 5

    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[int, TgMessage] = {}
        self.next_id = 2  # message 1 is the channel's creation, never shown
        for i in range(11):
            when = T0 + timedelta(hours=i)
            if i == 3:
                self._add(when, "", "")  # a photo without caption: no text, no posting
            elif i == 5:
                self._add(
                    when,
                    'New dump: <a href="https://example.com/x" target="_blank" rel="noopener">example.com/x</a>'
                    "<br/>password: <b>infected</b>",
                    "New dump: example.com/x\npassword: infected",
                )
            elif i == 7:
                self._add(when, "Mirror is up again", "Mirror is up again", reply_to=self.next_id - 2)
            elif i == 9:
                self._add(when, "admin:admin@10.0.0.8", "admin:admin@10.0.0.8", forwarded_from="Other Leaks")
            else:
                self._add(when, f"Daily drop #{i}: 12 new combos", f"Daily drop #{i}: 12 new combos")

    def _add(
        self,
        when: datetime,
        html_: str,
        text: str,
        reply_to: int | None = None,
        forwarded_from: str | None = None,
    ) -> TgMessage:
        msg = TgMessage(self.next_id, when, html_, text, reply_to, forwarded_from)
        self.messages[msg.id] = msg
        self.next_id += 1 if self.next_id != 6 else 2  # id 7 was deleted: ids have gaps
        return msg

    def post(self, text: str) -> TgMessage:
        with self.lock:
            latest = max(m.time for m in self.messages.values())
            return self._add(latest + timedelta(minutes=5), esc(text), text)

    @property
    def channel_url(self) -> str:
        return f"{self.base_url}/s/{self.channel}"

    def expected(self) -> dict[str, Expected]:
        return {
            f"{self.base_url}/{self.channel}/{m.id}": Expected(
                f"{self.base_url}/{self.channel}/{m.id}", self.title, self.title, m.time, m.text
            )
            for m in self.messages.values()
            if m.text
        }

    def route(self, path: str, query: dict[str, str]) -> Page:
        if path != f"/s/{self.channel}":
            raise KeyError(path)
        ordered = sorted(self.messages)
        if "before" in query:
            ordered = [i for i in ordered if i < int(query["before"])]
        shown = ordered[-self.per_page :]
        return self._page(shown, first_page="before" not in query)

    def _message(self, msg: TgMessage) -> str:
        ch = self.channel
        reply = ""
        if msg.reply_to and msg.reply_to in self.messages:
            quoted = self.messages[msg.reply_to]
            reply = (
                f'<a class="tgme_widget_message_reply" href="https://t.me/{ch}/{quoted.id}">'
                '<div class="tgme_widget_message_author accent_color"><span class="tgme_widget_message_author_name" '
                f'dir="auto">{esc(self.title)}</span></div>'
                '<div class="tgme_widget_message_text js-message_reply_text" dir="auto">'
                f"{quoted.html}</div></a>"
            )
        forwarded = (
            '<div class="tgme_widget_message_forwarded_from accent_color">Forwarded from '
            f'<a class="tgme_widget_message_forwarded_from_name" href="https://t.me/otherleaks/5">'
            f'<span dir="auto">{esc(msg.forwarded_from)}</span></a></div>'
            if msg.forwarded_from
            else ""
        )
        text = (
            f'<div class="tgme_widget_message_text js-message_text" dir="auto">{msg.html}</div>'
            if msg.html
            else f'<a class="tgme_widget_message_photo_wrap" href="https://t.me/{ch}/{msg.id}" '
            "style=\"width:800px;background-image:url('https://cdn4.cdn-telegram.org/file/x.jpg')\"></a>"
        )
        return (
            '<div class="tgme_widget_message_wrap js-widget_message_wrap">'
            f'<div class="tgme_widget_message text_not_supported_wrap js-widget_message" data-post="{ch}/{msg.id}" '
            f'data-view="eyJjIjotMTAwMCwicCI6{msg.id}" data-peer="c1000_-123" data-peer-hash="abc" '
            f'data-post-id="{msg.id}">\n'
            f'<div class="tgme_widget_message_user"><a href="https://t.me/{ch}"><i class="tgme_widget_message_user_photo '
            'bgcolor2" style="background-color:#3ca5ec" data-content="L"><img src="https://cdn4.cdn-telegram.org/'
            'file/avatar.jpg"></i></a></div>\n'
            '<div class="tgme_widget_message_bubble"><i class="tgme_widget_message_bubble_tail"><svg class="bubble_icon" '
            'width="9px" height="20px" viewBox="0 0 9 20"><g fill="none"><path class="background" fill="#ffffff" '
            'd="M8,1 L9,1"></path></g></svg></i>\n'
            '<div class="tgme_widget_message_author accent_color"><a class="tgme_widget_message_owner_name" '
            f'href="https://t.me/{ch}"><span dir="auto">{esc(self.title)}</span></a></div>\n'
            f"{forwarded}{reply}{text}\n"
            '<div class="tgme_widget_message_footer compact js-message_footer">'
            '<div class="tgme_widget_message_info short js-message_info">'
            f'<span class="tgme_widget_message_views">{msg.id * 37}</span><span class="copyonly"> views</span>'
            '<span class="tgme_widget_message_meta"><a class="tgme_widget_message_date" '
            f'href="https://t.me/{ch}/{msg.id}"><time datetime="{msg.time.isoformat()}" class="time">'
            f"{msg.time.strftime('%H:%M')}</time></a></span></div></div>\n"
            "</div></div></div>"
        )

    def _page(self, shown: list[int], first_page: bool) -> Page:
        ch = self.channel
        older = f"/s/{ch}?before={shown[0]}" if shown and shown[0] > min(self.messages) else ""
        head_prev = f'<link rel="prev" href="{older}">' if older and first_page else ""
        head_next = f'<link rel="next" href="/s/{ch}?after={shown[-1]}">' if shown and not first_page else ""
        more = (
            '<div class="tgme_widget_message_centered js-messages_more_wrap">'
            f'<a href="{older}" data-before="{shown[0]}" class="tme_messages_more js-messages_more"></a></div>'
            if older
            else ""
        )
        doc = (
            '<!DOCTYPE html>\n<html>\n  <head>\n    <meta charset="utf-8">\n'
            f"    <title>{esc(self.title)} – Telegram</title>\n"
            '    <meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
            f'    <meta property="og:title" content="{esc(self.title)}">\n'
            '    <meta property="og:image" content="https://cdn4.cdn-telegram.org/file/avatar.jpg">\n'
            '    <meta property="og:site_name" content="Telegram">\n'
            '    <meta property="og:description" content="Fresh leaks every day">\n'
            f'    <link rel="canonical" href="https://t.me/s/{ch}">\n    {head_prev}{head_next}\n'
            '    <link href="//telegram.org/css/widget-frame.css?71" rel="stylesheet">\n'
            "    <script>TWidgetLogin.init();</script>\n  </head>\n"
            '  <body class="widget_frame_base tgme_webpreview_body emoji_image nodesktop">\n'
            '    <header class="tgme_header search_collapsed"><div class="tgme_header_info">'
            f'<div class="tgme_header_title"><span dir="auto">{esc(self.title)}</span></div>'
            '<div class="tgme_header_counter">1.2K subscribers</div></div></header>\n'
            '    <main class="tgme_main"><div class="tgme_container">'
            '<section class="tgme_channel_history js-message_history">\n'
            f"{more}\n" + "\n".join(self._message(self.messages[i]) for i in shown) + "\n"
            "</section></div></main>\n"
            '    <script src="//telegram.org/js/widget-frame.js?65"></script>\n  </body>\n</html>\n'
        )
        return Page(200, doc.encode("utf-8"))


# ---------------------------------------------------------------------------------------------------
# A plain site for the generic spider
# ---------------------------------------------------------------------------------------------------


@dataclass
class Entry:
    key: str
    title: str
    author: str
    time: datetime
    lines: list[str]
    with_id: bool = True
    plain: bool = False  # a paste served as text/plain


class GenericSite(FixtureSite):
    """Two things a selector-described source looks like:

    - ``/board/`` (and ``/board/?page=2``): entries ``div.entry`` with ids (one without), next link ``a.next``;
    - ``/pastes/`` (and ``?page=2``): links ``a.paste-link`` to ``/pastes/p/KEY`` pages whose paste is
      ``pre.paste``, three per page, next link ``a[rel=next]``; one paste is served as text/plain.
    """

    per_page = 3

    def __init__(self) -> None:
        super().__init__()
        t = T0
        self.board: list[list[Entry]] = [
            [
                Entry("e-301", "Payroll export", "zed", t, ["name,iban", "Jane Roe,DE89370400440532013000"]),
                Entry(
                    "e-300", "Looking for a partner", "yan", t - timedelta(hours=1), ["DM me for details."]
                ),
            ],
            [
                Entry("e-299", "Router creds", "xia", t - timedelta(hours=5), ["admin / Sup3rSecret!"]),
                Entry(
                    "", "Untitled note", "wu", t - timedelta(hours=6), ["no id on this one"], with_id=False
                ),
            ],
        ]
        self.pastes: list[Entry] = [
            Entry(
                f"k{n}",
                f"Paste {n}",
                f"user{n}",
                t - timedelta(minutes=10 * n),
                [f"paste {n} line 1", f"line 2 of {n}"],
            )
            for n in range(1, 6)
        ]
        self.pastes[3].plain = True

    def publish(self, entry: Entry) -> None:
        with self.lock:
            self.pastes.insert(0, entry)

    @property
    def board_url(self) -> str:
        return f"{self.base_url}/board/"

    @property
    def pastes_url(self) -> str:
        return f"{self.base_url}/pastes/"

    def expected_board(self) -> dict[str, Expected]:
        out: dict[str, Expected] = {}
        for page, entries in enumerate(self.board, start=1):
            page_url = self.board_url + (f"?page={page}" if page > 1 else "")
            for index, e in enumerate(entries, start=1):
                url = f"{page_url}#{e.key if e.with_id else index}"
                text = "\n".join([e.title, f"by {e.author} on {e.time:%d %b %Y}", *e.lines])
                out[url] = Expected(url, e.title, e.author, e.time, text)
        return out

    def expected_pastes(self) -> dict[str, Expected]:
        out: dict[str, Expected] = {}
        for e in self.pastes:
            url = f"{self.base_url}/pastes/p/{e.key}"
            if e.plain:
                out[url] = Expected(url, None, None, None, "\n".join(e.lines))
            else:
                out[url] = Expected(url, f"{e.title} - Pasty", e.author, e.time, "\n".join(e.lines))
        return out

    def route(self, path: str, query: dict[str, str]) -> Page:
        page = int(query.get("page", "1") or 1)
        if path == "/board/":
            return self._board(page)
        if path == "/pastes/":
            return self._paste_list(page)
        if path.startswith("/pastes/p/"):
            key = path.rsplit("/", 1)[1]
            entry = (
                next(e for e in self.pastes if e.key == key)
                if any(e.key == key for e in self.pastes)
                else None
            )
            if entry is None:
                raise KeyError(key)
            return self._paste(entry)
        raise KeyError(path)

    @staticmethod
    def _html(title: str, body: str) -> Page:
        doc = (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>\n'
            "<style>body{font-family:sans-serif}</style>\n"
            '<script>window.dataLayer = [{"page": "x"}];</script></head>\n'
            '<body><nav class="top"><a href="/">Home</a> | <a href="/board/">Board</a></nav>\n'
            f"{body}\n<footer>&copy; 2024 Pasty</footer></body></html>\n"
        )
        return Page(200, doc.encode("utf-8"))

    def _board(self, page: int) -> Page:
        if not 1 <= page <= len(self.board):
            raise KeyError(page)
        items = []
        for e in self.board[page - 1]:
            ident = f' id="{e.key}"' if e.with_id else ""
            items.append(
                f'<div class="entry"{ident}>\n<h2 class="entry-title">{esc(e.title)}</h2>\n'
                f'<div class="meta">by <span class="byline">{esc(e.author)}</span> on '
                f'<time datetime="{e.time.isoformat()}">{e.time:%d %b %Y}</time></div>\n'
                f'<div class="body"><p>{"</p><p>".join(esc(line) for line in e.lines)}</p>'
                "<script>trackEntry()</script></div>\n</div>"
            )
        nxt = f'<a class="next" href="?page={page + 1}">Older entries</a>' if page < len(self.board) else ""
        return self._html("The Board", '<main id="board">' + "\n".join(items) + f"</main>\n{nxt}")

    def _paste_list(self, page: int) -> Page:
        shown = self.pastes[(page - 1) * self.per_page : page * self.per_page]
        if not shown:
            raise KeyError(page)
        rows = "\n".join(
            f'<tr><td><a class="paste-link" href="p/{e.key}#top">{esc(e.title)}</a></td>'
            f"<td>{esc(e.author)}</td><td>{e.time:%H:%M}</td></tr>"
            for e in shown
        )
        more = len(self.pastes) > page * self.per_page
        nxt = f'<a rel="next" href="?page={page + 1}">Next</a>' if more else ""
        return self._html(
            "Recent pastes - Pasty", f'<table class="pastes">{rows}</table>\n<p class="pager">{nxt}</p>'
        )

    def _paste(self, e: Entry) -> Page:
        if e.plain:
            return Page(200, "\n".join(e.lines).encode("utf-8") + b"\n", "text/plain; charset=utf-8")
        body = (
            f'<h1>{esc(e.title)}</h1>\n<div class="info">Posted by <a class="paste-author" href="/u/{esc(e.author)}">'
            f'{esc(e.author)}</a> <time datetime="{e.time.isoformat()}">{e.time:%Y-%m-%d}</time></div>\n'
            f'<pre class="paste">{esc(chr(10).join(e.lines))}</pre>\n<div class="ad">Buy our VPN!</div>'
        )
        return self._html(f"{e.title} - Pasty", body)
