"""Build of the native extensions; everything else is configured in pyproject.toml.

Every extension is optional: without a C compiler the install still succeeds and each has a pure-Python
path, only slower: the candidate scanner (pipelines/detection/extract.py), the fingerprints
(pipelines/fingerprint.py, pipelines/detection/documents.py), the selector scan of search indexing
(core/search/base.py, its regexes) and the search tokenizer (core/search/cjk.py).
"""

from setuptools import Extension, setup

#: (module, C source, headers it includes): the same list `make sanitize` builds with ASan/UBSan.
NATIVE = [
    (
        "pipelines.detection._scanner",
        "pipelines/detection/_native/scanner.c",
        ["pipelines/detection/_native/sha256.h", "pipelines/detection/_native/util.h"],
    ),
    ("pipelines.detection._fingerprint", "pipelines/detection/_native/fingerprint.c", []),
    ("core.search._selectors", "core/search/_native/selectors.c", []),
    ("core.search._tokens", "core/search/_native/tokens.c", []),
]

setup(
    ext_modules=[
        Extension(
            module,
            sources=[source],
            depends=headers,
            extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wextra"],
            optional=True,
        )
        for module, source, headers in NATIVE
    ]
)
