# rulesvc: the decision service in one image. Runs as a non-root user; data in the /data volume.
#   docker build -t rulesvc .
#   docker run -p 8000:8000 -v rulesvc-data:/data rulesvc
# Production: -e RULESVC_DATABASE_URL=postgresql://... -e RULESVC_REDIS_URL=redis://... -e RULESVC_WORKERS=4;
# layouts with replicas, a worker and secrets from files: deploy/compose, deploy/helm (docs/operations.md)

FROM python:3.11-slim AS build
# durable_rules ships only as a source distribution: compile it here, not in the runtime image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml ./
COPY rulesvc ./rulesvc
COPY api ./api
COPY scheduler ./scheduler
COPY cli ./cli
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RULESVC_DATABASE_URL=sqlite:////data/rulesvc.db \
    RULESVC_RULESETS=/app/rulesets \
    RULESVC_PORT=8000
# Pango and Noto Sans CJK: evidence files as PDF (WeasyPrint), Chinese embedded.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin rulesvc \
    && mkdir -p /data /app \
    && chown rulesvc:rulesvc /data /app
COPY --from=build /install /usr/local
COPY --chown=rulesvc:rulesvc rulesets /app/rulesets
WORKDIR /app
USER rulesvc
VOLUME ["/data"]
EXPOSE 8000
# The health check asks the process itself on loopback: over HTTPS when a certificate is configured (not
# verified: the certificate names the service's host, not 127.0.0.1).
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, ssl, urllib.request; tls = bool(os.environ.get('RULESVC_TLS_CERT_FILE')); urllib.request.urlopen(('https' if tls else 'http') + '://127.0.0.1:%s/healthz' % os.environ.get('RULESVC_PORT', '8000'), timeout=2, context=ssl._create_unverified_context() if tls else None)"]
CMD ["rulesvc", "serve", "--host", "0.0.0.0"]
