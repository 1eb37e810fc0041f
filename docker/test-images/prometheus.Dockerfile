# The container test's stand-in for prom/prometheus: Debian's prometheus on the test base,
# with the official image's entry point, arguments, data folder and user.
ARG BASE
FROM ${BASE}
# DL3008: the stand-in follows Debian 12's current packages (security updates included);
# a pinned version would fail once the archive moves on.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /prometheus \
    && chown 65534:65534 /prometheus
WORKDIR /prometheus
# nobody, as in the official image
USER 65534:65534
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
