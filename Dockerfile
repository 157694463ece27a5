# Footprint image: one image for the API (default CMD), the Faust worker and `footprint migrate`.
#
#   docker build -t footprint .
#   docker run --rm -p 8000:8000 -e FOOTPRINT_KAFKA_URL=kafka://... footprint
#   docker run --rm footprint faust -A streams.app worker -l info
#
# Every runtime dependency ships as a manylinux wheel, so no compiler is installed.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN groupadd --system --gid 10001 footprint \
 && useradd --system --uid 10001 --gid footprint --home-dir /home/footprint --create-home \
        --shell /usr/sbin/nologin footprint \
 && mkdir -p /var/lib/footprint \
 && chown footprint:footprint /var/lib/footprint

WORKDIR /app

# 1. Dependencies only (cached until pyproject.toml changes): install the project's metadata
#    with empty packages, so this heavy layer does not depend on the source code.
COPY pyproject.toml README* ./
RUN mkdir -p footprint streams api schemas \
 && for p in footprint streams api schemas; do touch "$p/__init__.py"; done \
 && pip install . \
 && pip uninstall -y footprint \
 && rm -rf footprint streams api schemas build ./*.egg-info

# 2. The project itself. The source tree stays in /app next to sql/ (migrations read the SQL
#    files from the repository root next to the packages) and PYTHONPATH makes every entry point
#    (uvicorn, faust, the `footprint` script) import this tree rather than the site-packages copy.
COPY footprint ./footprint
COPY streams ./streams
COPY api ./api
COPY schemas ./schemas
COPY sql ./sql
RUN pip install --no-deps . \
 && rm -rf build ./*.egg-info

ENV PYTHONPATH=/app \
    FOOTPRINT_DATA_DIR=/var/lib/footprint

USER footprint

EXPOSE 8000

CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
