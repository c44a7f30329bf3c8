FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml ./
COPY services ./services
COPY gateway ./gateway
COPY schemas ./schemas
COPY alembic ./alembic
COPY alembic.ini config.yaml ./
RUN pip install --no-cache-dir .
ENV ATLAS_CONFIG=/app/config.yaml PYTHONPATH=/app
USER nobody
