"""Build of the native candidate scanner; everything else is configured in pyproject.toml.

The extension is optional: without a C compiler the install still succeeds and detection runs on the
pure-Python extractor (pipelines/detection/extract.py), only slower. Likewise core.search._selectors (the
selector scan of search indexing): without it core/search/base.py scans with its regexes.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "pipelines.detection._scanner",
            sources=["pipelines/detection/_native/scanner.c"],
            depends=["pipelines/detection/_native/sha256.h", "pipelines/detection/_native/util.h"],
            extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wextra"],
            optional=True,
        ),
        Extension(
            "pipelines.detection._fingerprint",
            sources=["pipelines/detection/_native/fingerprint.c"],
            extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wextra"],
            optional=True,
        ),
        Extension(
            "core.search._selectors",
            sources=["core/search/_native/selectors.c"],
            extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wextra"],
            optional=True,
        ),
        Extension(
            "core.search._tokens",
            sources=["core/search/_native/tokens.c"],
            extra_compile_args=["-O3", "-std=gnu11", "-Wall", "-Wextra"],
            optional=True,
        ),
    ]
)
