# Infusion Bridge service image (used by docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY services ./services
COPY fhir_mappings ./fhir_mappings
COPY contracts ./contracts
RUN pip install . && useradd --system --uid 10001 bridge && mkdir -p /app/var && chown bridge /app/var
USER bridge

ENV INFUSION_HOST=0.0.0.0 INFUSION_PORT=8000 \
    INFUSION_CATALOG_PATH=/app/contracts/drug-catalog.json
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health/live').status != 200)"
CMD ["infusion-bridge", "serve"]
