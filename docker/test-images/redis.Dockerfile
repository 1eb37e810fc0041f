# The container test's stand-in for redis:7.2-alpine: Debian's redis-server on the test base.
# Like the official image: data in /data (a volume), runs as the redis user, and protected
# mode off (the official image builds redis-server with it off: in a container, clients
# come from other containers, and with no password protected mode would refuse them).
ARG BASE
FROM ${BASE}
# DL3008: the stand-in follows Debian 12's current packages (security updates included);
# a pinned version would fail once the archive moves on.
# uid 999, as in the official image; the package's user creation keeps an existing user.
# SC2016: the entry point's "$1" and "$@" are written as they are, for the script to expand.
# hadolint ignore=DL3008,SC2016
RUN groupadd --system --gid 999 redis \
    && useradd --system --uid 999 --gid redis --home-dir /var/lib/redis redis \
    && apt-get update \
    && apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir /data \
    && chown 999:999 /data \
    && printf '%s\n' '#!/bin/sh' \
      'if [ "$1" = redis-server ]; then shift; exec redis-server --protected-mode no "$@"; fi' \
      'exec "$@"' > /usr/local/bin/redis-entrypoint \
    && chmod 755 /usr/local/bin/redis-entrypoint
WORKDIR /data
USER 999:999
EXPOSE 6379
ENTRYPOINT ["/usr/local/bin/redis-entrypoint"]
CMD ["redis-server"]
