# reconciler as a container image, for CI systems other than GitHub Actions
# (GitLab CI, Jenkins, ...). The image holds the wheel built from this checkout and its
# runtime dependencies, with the PostgreSQL driver for a shared journal; nothing else.
#
#   docker build -t license-reconciler .
#   docker run --rm -v "$PWD:/repo" license-reconciler plan licenses --output markdown
#
# The base is pinned by digest: python:3.11-slim (Python 3.11.16, Debian trixie),
# multi-architecture index. To move it, resolve the new digest with
# `docker buildx imagetools inspect python:3.11-slim` and replace both FROM lines.

FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY reconciler ./reconciler
RUN python -m pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /dist /dist
RUN python -m pip install "$(ls /dist/license_reconciler-*.whl)[postgres]" \
    && rm -rf /dist \
    && useradd --create-home --uid 10001 --user-group reconciler \
    && mkdir /repo && chown reconciler:reconciler /repo
# Runs as this user; the desired-state repository is mounted (or checked out) here, and the
# sandbox state and the SQLite journal go to its .reconciler/ folder.
USER 10001:10001
WORKDIR /repo
ENTRYPOINT ["reconciler"]
CMD ["--help"]
