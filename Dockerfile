# The OpsSeer image: the `opsseer` distribution, run as the API, toyprod, a Celery worker, beat or Flower
# by the command that compose.yaml gives each service. No secret is built in: settings come from
# OPSSEER_* variables at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

LABEL org.opencontainers.image.title="opsseer" \
      org.opencontainers.image.description="Self-hosted incident response: Alertmanager webhooks become incident timelines" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 opsseer \
 && useradd --system --uid 10001 --gid opsseer --home-dir /var/lib/opsseer --create-home \
        --shell /usr/sbin/nologin opsseer \
 && install --directory --owner=opsseer --group=opsseer /var/lib/opsseer/beat

# NOTE: the image leaves out the `ai` extra. That extra needs torch==2.13.0 installed before it, because
# a requirement that lets pip choose torch pulls a multi-GB CUDA build. The model services are built
# separately, as a bento from bentofile.yaml.
COPY . /tmp/opsseer-src
RUN pip install /tmp/opsseer-src \
 && rm -rf /tmp/opsseer-src

USER opsseer
WORKDIR /var/lib/opsseer

CMD ["opsseer", "--help"]
